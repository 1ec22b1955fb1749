import pytest
import torch

import segkit.losses  # noqa: F401  (registers losses)
from segkit.errors import SegkitError
from segkit.losses.cross_entropy import CrossEntropy
from segkit.losses.dice import Dice
from segkit.registry import LOSSES


def test_weighted_sum_of_parts_built_with_the_shared_ignore_index():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, 5, generator=generator)
    target = torch.randint(0, 3, (2, 5, 5), generator=generator)
    target[0, 0] = 7
    cfg = dict(type="Combo", losses=[dict(type="CrossEntropy", weight=0.75), dict(type="Dice", weight=0.25)])
    combo = LOSSES.build(cfg, where="loss", ignore_index=7)
    assert [part.ignore_index for part in combo.parts] == [7, 7]
    expected = (0.75 * CrossEntropy(ignore_index=7)(logits, target)
                + 0.25 * Dice(ignore_index=7)(logits, target))
    assert torch.allclose(combo(logits, target), expected)


def test_part_keys_are_checked_like_top_level_losses():
    with pytest.raises(SegkitError, match=r"loss\.losses\[1\]\.type='Dise'.*did you mean 'Dice'"):
        LOSSES.build(dict(type="Combo", losses=[dict(type="Focal"), dict(type="Dise")]), where="loss")
    with pytest.raises(SegkitError, match=r"loss\.losses\[0\] \(Focal\): unknown argument 'gama'"):
        LOSSES.build(dict(type="Combo", losses=[dict(type="Focal", gama=2)]), where="loss")
    with pytest.raises(SegkitError, match="non-empty list"):
        LOSSES.build(dict(type="Combo", losses=dict(type="Focal")), where="loss")
