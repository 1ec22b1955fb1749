"""Weighted sums of registered losses, e.g. 0.75 CrossEntropy + 0.25 Dice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from segkit.errors import SegkitError
from segkit.registry import LOSSES


@LOSSES.register()
class Combo(nn.Module):
    """``sum_k weight_k * loss_k``; each part is built through the registry with the shared ``ignore_index``.

    Config: ``loss = dict(type="Combo", losses=[dict(type="CrossEntropy", weight=0.75),
    dict(type="Dice", weight=0.25)])``; ``weight`` defaults to 1, other keys go to the part.
    """

    def __init__(self, losses: Sequence[Mapping[str, Any]], ignore_index: int = 255) -> None:
        super().__init__()
        if isinstance(losses, Mapping) or not isinstance(losses, Sequence) or not losses:
            raise SegkitError("Combo.losses must be a non-empty list of dict(type=..., weight=...), "
                              f"got {losses!r}")
        parts, weights = [], []
        for index, part in enumerate(losses):
            where = f"loss.losses[{index}]"
            if not isinstance(part, Mapping):
                raise SegkitError(f"{where} must be a dict(type=..., weight=...), got {part!r}")
            weight = part.get("weight", 1.0)
            if not isinstance(weight, int | float) or isinstance(weight, bool):
                raise SegkitError(f"{where}.weight must be a number, got {weight!r}")
            config = {key: value for key, value in part.items() if key != "weight"}
            parts.append(LOSSES.build(config, where=where, ignore_index=ignore_index))
            weights.append(float(weight))
        self.parts = nn.ModuleList(parts)
        self.weights = weights

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(weight * part(logits, target) for weight, part in zip(self.weights, self.parts))
