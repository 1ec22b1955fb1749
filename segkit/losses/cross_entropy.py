"""Cross-entropy over valid pixels: the first and simplest registered loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segkit.registry import LOSSES


@LOSSES.register()
class CrossEntropy(nn.Module):
    """Mean pixel cross-entropy, ignoring ``ignore_index``.

    Computed from float32 logits so it stays finite under fp16/bf16 autocast, and divided by the number of
    valid pixels (clamped at 1) so an all-ignore batch gives 0 instead of NaN.
    """

    def __init__(self, ignore_index: int = 255, class_weights: Sequence[float] | None = None,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        per_pixel = F.cross_entropy(logits.float(), target, weight=self.class_weights,
                                    ignore_index=self.ignore_index, label_smoothing=self.label_smoothing,
                                    reduction="none")
        valid = target != self.ignore_index
        if self.class_weights is None:
            denominator = valid.sum()
        else:
            denominator = self.class_weights[target.clamp(max=logits.shape[1] - 1)][valid].sum()
        return per_pixel.sum() / denominator.clamp(min=1)
