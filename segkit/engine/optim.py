"""Optimizers and learning-rate schedules, registered so configs can name them."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from segkit.registry import OPTIMIZERS, SCHEDULERS

for _optimizer in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RAdam):
    OPTIMIZERS.register()(_optimizer)


def warmup_cosine_factor(step: int, total_iters: int, warmup_iters: int, min_lr_ratio: float) -> float:
    """LR multiplier: linear from 1/warmup to 1 over ``warmup_iters``, then cosine down to ``min_lr_ratio``."""
    if step < warmup_iters:
        return (step + 1) / warmup_iters
    progress = min(1.0, (step - warmup_iters) / max(1, total_iters - warmup_iters))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


@SCHEDULERS.register()
def CosineWarmup(optimizer: torch.optim.Optimizer, total_iters: int, warmup_iters: int = 0,
                 min_lr_ratio: float = 0.0) -> LambdaLR:
    """Cosine decay with linear warmup, stepped once per optimizer step (not per epoch)."""
    return LambdaLR(optimizer, lambda step: warmup_cosine_factor(step, total_iters, warmup_iters, min_lr_ratio))
