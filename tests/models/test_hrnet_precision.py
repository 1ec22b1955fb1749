"""HRNet-OCR's spatial softmax, pixel-region relation and the matmuls around them stay float32 under autocast."""

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from segkit.models.hrnet import OCRHead


class OpDtypes(TorchDispatchMode):
    """Records the floating dtypes of the tensor inputs of every aten op that runs."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, set[torch.dtype]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        dtypes = {a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()}
        self.seen.append((func.overloadpacket.__name__, dtypes))
        return func(*args, **(kwargs or {}))

    def dtypes_of(self, *names: str) -> set[torch.dtype]:
        return set().union(*(dtypes for name, dtypes in self.seen if name in names))


def test_ocr_attention_runs_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    head = OCRHead(in_channels=8, num_classes=3, mid_channels=8, key_channels=4, dropout=0.0).eval()
    features = torch.randn(2, 8, 6, 5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), OpDtypes() as ops:
        logits, aux = head(features)
    assert ops.dtypes_of("convolution") == {torch.bfloat16}  # autocast is on for the convolutions
    assert ops.dtypes_of("_softmax") == {torch.float32}
    assert ops.dtypes_of("bmm") == {torch.float32}
    assert sum(name == "_softmax" for name, _ in ops.seen) == 2 and sum(name == "bmm" for name, _ in ops.seen) == 3
    assert torch.isfinite(logits.float()).all() and logits.shape == aux.shape == (2, 3, 6, 5)
