"""Cross-entropy over valid pixels, with class weights and label smoothing."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from segkit.errors import SegkitError
from segkit.losses.base import PixelLoss, check_number
from segkit.registry import LOSSES


@LOSSES.register()
class CrossEntropy(PixelLoss):
    """``l_i = (1 - eps) (-log p_{y_i}) + eps * mean_c(-log p_c)``, weighted by the class weight of ``y_i``.

    Equals ``F.cross_entropy(..., ignore_index=...)`` with class weights or with label smoothing. With both,
    torch weights the smoothing term of class ``c`` by ``w_c``; here the whole pixel term is weighted by
    ``w_{y_i}``, so the loss stays a weighted mean of per-pixel terms (see ``PixelLoss``).
    """

    def __init__(self, ignore_index: int = 255, class_weights: Sequence[float] | None = None,
                 label_smoothing: float = 0.0) -> None:
        super().__init__(ignore_index, class_weights)
        self.label_smoothing = check_number(label_smoothing, "CrossEntropy.label_smoothing")
        if self.label_smoothing >= 1.0:
            raise SegkitError(f"CrossEntropy.label_smoothing must be in [0, 1), got {label_smoothing!r}")

    def pixel_losses(self, log_probs: torch.Tensor, nll: torch.Tensor) -> torch.Tensor:
        if self.label_smoothing == 0.0:
            return nll
        uniform = -log_probs.mean(dim=1)
        return (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform
