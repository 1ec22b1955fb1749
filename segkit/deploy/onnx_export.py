"""A segkit checkpoint -> an ONNX file with dynamic batch, height and width, proven equal to PyTorch.

The graph takes *normalised* float32 images ``(N, 3, H, W)`` and returns logits ``(N, C, H, W)``: the
caller divides ``pixel - mean`` by ``std`` (both in the file's metadata), see docs/deploy.md for why.
``PaddedSegmenter`` pads with sizes computed in Python, which the TorchScript tracer would freeze to the
example's; :class:`ExportPadding` pads by the largest amount ever needed and slices the stride multiple
with traced sizes instead, which gives the same numbers at every size.
"""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import segkit
from segkit.config import config_from_dict
from segkit.deploy.runtime import require
from segkit.engine.checkpoint import evaluated_weights, load_checkpoint
from segkit.engine.provenance import config_hash
from segkit.errors import SegkitError
from segkit.inference.checkpoints import inference_network

# Check sizes (H, W): square, the odd non-square case the issue names, and one above the training crops.
CHECK_SIZES = ((256, 256), (97, 131), (640, 576))
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}
# fp16: a near-tie of two logits flips under 11-bit rounding (a from-scratch tiny model: 99.90 % equal).
MIN_ARGMAX_AGREEMENT = {"fp32": 0.9999, "fp16": 0.995}
INPUT, OUTPUT = "images", "logits"
# The traced example's side: PAN's pyramid pools a stride-32 map three times, so 256 is its smallest input.
EXAMPLE_SIDE = 256


# smp architectures whose graph cannot be exported with dynamic H and W by torch 2.14's exporters: refused in one
# line before tracing (measured: the tracer fails or gives wrong numbers at other sizes than the example's).
NOT_EXPORTABLE = {
    "PSPNet": "its pyramid pooling (adaptive_avg_pool2d to 1, 2, 3, 6 bins) needs the input size, which a graph "
              "with dynamic H and W does not know",
    "UPerNet": "its pyramid pooling module (adaptive_avg_pool2d to fixed bins) needs the input size, which a graph "
               "with dynamic H and W does not know",
    "DPT": "timm resamples the ViT position embedding with antialiased bicubic interpolation "
           "(aten::_upsample_bicubic2d_aa), which has no ONNX operator",
    "PAN": "its feature pyramid attention pools a stride-32 map three times, so inputs under 256 px come out wrong "
           "once the sizes are dynamic",
}


def refuse_unexportable(model: nn.Module) -> None:
    """One line naming the architecture, the layer and why, instead of a tracer traceback or a wrong graph."""
    name = type(getattr(model, "net", model)).__name__
    if name in NOT_EXPORTABLE:
        raise SegkitError(f"{name} cannot be exported to ONNX with dynamic image sizes: {NOT_EXPORTABLE[name]}; "
                          "export another architecture (docs/deploy.md lists which export)")


class ExportPadding(nn.Module):
    """``PaddedSegmenter``'s forward in traceable form: static pad of ``multiple - 1``, dynamic slices."""

    def __init__(self, net: nn.Module, multiple: int) -> None:
        super().__init__()
        self.net = net
        self.multiple = multiple

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2], images.shape[-1]
        m = self.multiple
        padded = nn.functional.pad(images, (0, m - 1, 0, m - 1))
        padded = padded[..., : (height + m - 1) // m * m, : (width + m - 1) // m * m]
        out = self.net(padded)
        if isinstance(out, dict):
            out = out["out"]
        return out[..., :height, :width]


@dataclass
class LoadedModel:
    """An eval-mode network with what the ONNX metadata records about it."""

    model: nn.Module
    metadata: dict[str, str]


def load_for_export(checkpoint: str | Path) -> LoadedModel:
    """The checkpoint's network (its stored config builds it, evaluated weights) and the file's metadata."""
    path = Path(checkpoint)
    state = load_checkpoint(path)
    if not isinstance(state, Mapping) or not isinstance(state.get("config"), Mapping) or "model" not in state:
        raise SegkitError(f"{path} is not a segkit checkpoint (no model weights and stored config); export "
                          "a checkpoint written by tools/train.py, e.g. work_dirs/RUN/checkpoints/best.pth")
    cfg = config_from_dict(state["config"], f"{path} (stored config)")
    classes = state.get("classes")
    if classes is None:
        raise SegkitError(f"{path} holds no class list; re-save it from a segkit run")
    model = inference_network(cfg.model, len(classes))
    try:
        model.load_state_dict(evaluated_weights(state))
    except (KeyError, RuntimeError) as err:
        raise SegkitError(f"{path}: weights do not fit model.type={cfg.model.type!r}") from err
    metadata = {"segkit_version": segkit.__version__, "classes": json.dumps(list(classes)),
                "mean": json.dumps(list(cfg.data.mean)), "std": json.dumps(list(cfg.data.std)),
                "stride_multiple": str(int(getattr(model, "multiple", 1))), "config_hash": config_hash(cfg),
                "config": json.dumps(cfg.to_dict(), default=str), "checkpoint_sha256": _sha256(path),
                "input": "float32 (N, 3, H, W) RGB, (pixel - mean) / std", "output": "logits (N, C, H, W)"}
    return LoadedModel(model.eval(), metadata)


def exportable(model: nn.Module) -> nn.Module:
    """The eval network wrapped for tracing (auxiliary outputs dropped)."""
    net = getattr(model, "net", model)
    return ExportPadding(net, int(getattr(model, "multiple", 1))).eval()


def export_model(model: nn.Module, out: str | Path, metadata: Mapping[str, str], opset: int = 17,
                 fp16: bool = False) -> Path:
    """Trace ``model`` with the TorchScript exporter (dynamic N, H, W), add metadata, ``onnx.checker`` it.

    The dynamo exporter is not used: with torch 2.14 it specialises the padding to the example size
    (97x131 came out wrong) and fails on UnetPlusPlus and HRNet; the tracer with :class:`ExportPadding`
    passes every registered architecture.
    """
    onnx = require("onnx")
    refuse_unexportable(model)
    out = Path(out)
    wrapped = exportable(model)
    example = torch.zeros(1, 3, EXAMPLE_SIDE, EXAMPLE_SIDE)
    if fp16:  # a copy: ``model`` stays the fp32 reference of the check
        wrapped, example = copy.deepcopy(wrapped).half(), example.half()
    axes = {0: "N", 2: "H", 3: "W"}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, (example,), str(out), dynamo=False, opset_version=opset,
                              input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: axes, OUTPUT: axes})
    except Exception as err:  # the exporter raises many types; the first line names the layer
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SegkitError(f"ONNX export failed ({type(err).__name__}: {first[:300]})") from err
    proto = onnx.load(str(out))
    for key, value in {**metadata, "precision": "fp16" if fp16 else "fp32"}.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    return out


def check_export(model: nn.Module, onnx_path: str | Path, sizes: Sequence[tuple[int, int]] = CHECK_SIZES,
                 batch: int = 2, fp16: bool = False, seed: int = 0) -> list[dict[str, Any]]:
    """onnxruntime vs PyTorch on random normalised inputs at ``sizes``: max |softmax difference| within
    :data:`TOLERANCE` and argmax equal on :data:`MIN_ARGMAX_AGREEMENT` of pixels, else a SegkitError naming
    the size and both numbers."""
    from segkit.deploy.onnx_session import open_session

    session = open_session(onnx_path)
    precision = "fp16" if fp16 else "fp32"
    limit, min_agree = TOLERANCE[precision], MIN_ARGMAX_AGREEMENT[precision]
    generator = torch.Generator().manual_seed(seed)
    results = []
    for height, width in sizes:
        images = torch.randn(batch, 3, height, width, generator=generator)
        with torch.no_grad():
            out = model(images)
            reference = (out["out"] if isinstance(out, dict) else out).float()
        feed = images.numpy().astype(np.float16 if fp16 else np.float32)
        logits = torch.from_numpy(session.run(None, {INPUT: feed})[0].astype(np.float32))
        if logits.shape != reference.shape:
            raise SegkitError(f"ONNX check at {height}x{width}: output {tuple(logits.shape)} but PyTorch gives "
                              f"{tuple(reference.shape)}")
        diff = float((logits.softmax(1) - reference.softmax(1)).abs().max())
        agree = float((logits.argmax(1) == reference.argmax(1)).float().mean())
        results.append({"size": f"{height}x{width}", "max_prob_diff": diff, "argmax_agreement": agree})
        if not diff <= limit or agree < min_agree:
            raise SegkitError(f"ONNX check failed at {height}x{width}: max |prob difference| {diff:.2e} "
                              f"(limit {limit:g}), argmax equal on {agree:.4%} of pixels "
                              f"(need >= {min_agree:.2%})")
    return results


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
