"""Toy models for inference tests: cheap, padded like segkit models, and *not* equivariant to flips/rotations."""

from collections.abc import Callable

import pytest
import torch
from torch import nn

from segkit.inference.predictor import Member
from segkit.models.smp_models import PaddedSegmenter

IDENTITY_NORM = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


class PositionNet(nn.Module):
    """An asymmetric 3x3 conv, a stride-``multiple`` bottleneck and logits that depend on the pixel's row and
    column: flipping or rotating the input changes the output in a way only the right undo repairs."""

    def __init__(self, classes: int = 4, multiple: int = 4, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, classes, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=gen) * 0.05)
            self.conv.bias.copy_(torch.randn(classes, generator=gen))
        self.pool = nn.AvgPool2d(multiple)
        self.up = nn.Upsample(scale_factor=multiple, mode="nearest")
        self.row = nn.Parameter(torch.randn(classes, generator=gen) * 3)
        self.col = nn.Parameter(torch.randn(classes, generator=gen) * 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        rows = torch.linspace(0, 1, height, device=images.device).view(1, 1, -1, 1)
        cols = torch.linspace(0, 1, width, device=images.device).view(1, 1, 1, -1) ** 2
        features = self.conv(images)
        coarse = self.up(self.pool(features))
        return features + coarse + self.row.view(1, -1, 1, 1) * rows + self.col.view(1, -1, 1, 1) * cols


def _toy_member(classes: int = 4, multiple: int = 4, seed: int = 0, weight: float = 1.0) -> Member:
    model = PaddedSegmenter(PositionNet(classes, multiple, seed), multiple=multiple).eval()
    return Member(model, weight=weight, **IDENTITY_NORM)


@pytest.fixture
def toy_member() -> Callable[..., Member]:
    """``toy_member(classes=4, multiple=4, seed=0, weight=1.0)``: a PositionNet ensemble member, inputs 0..255."""
    return _toy_member


@pytest.fixture
def images() -> torch.Tensor:
    """Two non-square images with odd sides (37 x 23), uint8."""
    return torch.randint(0, 256, (2, 3, 37, 23), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
