from __future__ import annotations

import pytest
import torch
from torch import nn

from segkit.errors import SegkitError
from segkit.evaluation.tta import TTAModel, with_tta
from segkit.models.smp_models import PaddedSegmenter


class _LeftHeavy(nn.Module):
    """Logits that depend on the column: a horizontal flip changes them, so TTA must de-augment."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        cols = torch.linspace(-2, 2, images.shape[-1]).expand(images.shape[0], 1, *images.shape[-2:])
        return torch.cat([cols, -cols, images[:, :1]], dim=1)


def test_none_is_the_model_itself():
    model = nn.Conv2d(3, 2, 1)
    assert with_tta(model, "none") is model


def test_flip_merges_mean_softmax_probabilities_and_returns_their_log():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 5, 7)
    model = _LeftHeavy()
    flipped = model(images.flip(-1)).flip(-1)
    expected = (torch.softmax(model(images), 1) + torch.softmax(flipped, 1)) / 2
    out = with_tta(model, "flip")(images)
    assert out.shape == (2, 3, 5, 7)
    torch.testing.assert_close(out.exp(), expected)
    torch.testing.assert_close(torch.softmax(out, 1), expected)  # a drop-in for logits


def test_d4_runs_a_padded_segkit_model_on_a_non_square_odd_size():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(4), nn.Upsample(scale_factor=4))
    model = PaddedSegmenter(net, multiple=4).eval()
    images = torch.randn(1, 3, 37, 22)
    out = TTAModel(model, "d4")(images)
    assert out.shape == (1, 4, 37, 22)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(1, 37, 22))


def test_unknown_mode_is_a_segkit_error():
    with pytest.raises(SegkitError, match="--tta 'rot'"):
        with_tta(nn.Identity(), "rot")
