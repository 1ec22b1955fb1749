"""Test-time augmentation for evaluation: ttach's flips / D4 around any segkit model.

The merged output is the mean of the *softmax probabilities* of the augmented passes (not of the logits:
logit scales differ between passes, probabilities are comparable), returned as their log so it drops in
wherever logits are expected: its argmax is the argmax of the mean probability and its softmax is that mean
probability again. segkit models pad internally, so the 90-degree rotations of D4 work on any image size.
"""

from __future__ import annotations

import torch
import ttach
from torch import nn

from segkit.errors import SegkitError

TTA_MODES = ("none", "flip", "d4")


class _Probabilities(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(images).float(), dim=1)


class TTAModel(nn.Module):
    """``flip``: identity + horizontal flip (2 passes); ``d4``: the 8 flips/rotations of the square."""

    def __init__(self, model: nn.Module, mode: str) -> None:
        super().__init__()
        if mode == "flip":
            transforms = ttach.Compose([ttach.HorizontalFlip()])
        elif mode == "d4":
            transforms = ttach.aliases.d4_transform()
        else:
            raise SegkitError(f"--tta {mode!r} is not a TTA mode; use one of {', '.join(TTA_MODES)}")
        self.mode = mode
        self.wrapped = ttach.SegmentationTTAWrapper(_Probabilities(model), transforms, merge_mode="mean")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.wrapped(images).clamp_min(torch.finfo(torch.float32).tiny).log()


def with_tta(model: nn.Module, mode: str) -> nn.Module:
    """``model`` itself for ``none`` (bit-identical to plain evaluation), else a :class:`TTAModel`."""
    return model if mode == "none" else TTAModel(model, mode)
