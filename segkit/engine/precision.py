"""Mixed precision from ``train.amp``: False, True (fp16 + GradScaler on CUDA, bf16 elsewhere), "fp16", "bf16".

fp16 has a narrow range, so its gradients need loss scaling (GradScaler); bf16 has float32's range and needs
none. fp16 autocast is a CUDA feature here: on a CPU "fp16" is refused with the way out (bf16 is what a CPU
runs fast, and what ``amp=True`` picks there), rather than silently training in another precision.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from segkit.config_schema import is_amp_value
from segkit.errors import SegkitError

Amp = bool | str


@functools.lru_cache
def _has_bf16(index: int | None) -> bool:
    return torch.cuda.get_device_capability(index)[0] >= 8


def amp_dtype(device: torch.device, amp: Amp) -> torch.dtype | None:
    """The autocast dtype ``train.amp`` means on ``device``; None for full float32."""
    if not is_amp_value(amp):
        raise SegkitError(f"train.amp must be False, True, 'fp16' or 'bf16', got {amp!r}")
    if amp is False:
        return None
    if amp == "bf16" or (amp is True and device.type != "cuda"):
        if device.type == "cuda" and not _has_bf16(device.index):
            raise SegkitError(f"train.amp={amp!r}: this GPU ({torch.cuda.get_device_name(device)}) has no bf16; "
                              "use train.amp='fp16'")
        return torch.bfloat16
    if device.type != "cuda":
        raise SegkitError(f"train.amp='fp16' needs a CUDA device (this run is on {device.type}); use "
                          "train.amp='bf16' or True (bf16 off CUDA)")
    return torch.float16


def autocast(device: torch.device, amp: Amp) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``train.amp`` on ``device`` (a no-op context when amp is off)."""
    dtype = amp_dtype(device, amp)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, amp: Amp) -> torch.amp.GradScaler:
    """Enabled for fp16 only: fp16 gradients underflow without loss scaling; bf16 has fp32's range."""
    return torch.amp.GradScaler(device.type, enabled=amp_dtype(device, amp) == torch.float16)
