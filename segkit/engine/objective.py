"""Model outputs -> (loss numerator, normaliser), so a step over micro-batches and ranks equals one big batch.

Pixel-wise losses expose ``terms(logits, target) -> (sum of weighted pixel losses, sum of weights)``; the
step's loss is then the sum of all numerators over the sum of all normalisers, exactly what one batch holding
every pixel would give, however the ignore pixels are spread. Region losses (Dice, Lovasz, Combo) do not
decompose: their micro-batch values are averaged (numerator = value, normaliser = 1).
"""

from __future__ import annotations

import torch
from torch import nn


class Objective:
    def __init__(self, loss_fn: nn.Module, aux_weight: float = 0.4) -> None:
        self.loss_fn = loss_fn
        self.aux_weight = aux_weight
        self.decomposes = callable(getattr(loss_fn, "terms", None))

    def scale(self, masks: torch.Tensor) -> int:
        """A per-micro-batch constant of the numerator's size (keeps fp16 gradients in range before rescaling)."""
        return masks.numel() if self.decomposes else 1

    def _terms(self, logits: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.decomposes:
            return self.loss_fn.terms(logits, masks)
        return self.loss_fn(logits, masks), torch.ones((), device=logits.device)

    def __call__(self, outputs: torch.Tensor | dict[str, torch.Tensor],
                 masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Auxiliary heads (``{"out", "aux"}`` in training) add ``aux_weight`` x their numerator."""
        if isinstance(outputs, dict):
            numerator, normaliser = self._terms(outputs["out"], masks)
            aux_numerator, _ = self._terms(outputs["aux"], masks)
            return numerator + self.aux_weight * aux_numerator, normaliser
        return self._terms(outputs, masks)
