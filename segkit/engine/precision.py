"""Mixed precision chosen by device: fp16 + GradScaler on CUDA, bf16 (no scaler needed) elsewhere."""

from __future__ import annotations

import contextlib

import torch


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    """fp16 gradients underflow without loss scaling; bf16 has fp32's range, so the scaler is disabled."""
    return torch.amp.GradScaler(device.type, enabled=enabled and device.type == "cuda")
