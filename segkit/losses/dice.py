"""Soft multiclass Dice loss from softmax probabilities, over the whole batch."""

from __future__ import annotations

import torch
from torch import nn

from segkit.losses.base import check_inputs, check_number, float_log_probs
from segkit.registry import LOSSES


@LOSSES.register()
class Dice(nn.Module):
    """``1 - mean_c (2 sum p_c g_c + s) / (sum p_c + sum g_c + s)`` over valid pixels of the batch.

    The mean runs over classes present in the ground truth *or* in the argmax prediction, the same rule as
    mIoU's null classes: a class absent from both is a true negative and neither rewards nor dilutes the
    loss. A batch with no valid pixel gives 0. Dice is a region loss: it does not split into per-pixel
    sums, so gradient accumulation over micro-batches only approximates the full-batch value.
    """

    def __init__(self, ignore_index: int = 255, smooth: float = 1.0) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.smooth = check_number(smooth, "Dice.smooth")

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_inputs(logits, target, "Dice")
        num_classes = logits.shape[1]
        target = target.long()
        valid = (target != self.ignore_index).unsqueeze(1)
        probs = float_log_probs(logits).exp() * valid
        classes = torch.arange(num_classes, device=logits.device).view(1, -1, 1, 1)
        truth = (target.unsqueeze(1) == classes) & valid
        predicted = (probs.argmax(dim=1, keepdim=True) == classes) & valid
        dims = (0, 2, 3)
        intersection = (probs * truth).sum(dims)
        cardinality = probs.sum(dims) + truth.sum(dims)
        dice = (2 * intersection + self.smooth) / (cardinality + self.smooth).clamp(min=1e-12)
        present = truth.any(dim=(0, 2, 3)) | predicted.any(dim=(0, 2, 3))
        return torch.where(present, 1.0 - dice, 0.0).sum() / present.sum().clamp(min=1)
