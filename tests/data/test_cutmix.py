from __future__ import annotations

import pytest
import torch

from segkit.data.cutmix import CutMix, from_config
from segkit.errors import SegkitError


def labelled_batch(batch: int = 6, height: int = 20, width: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """Image ``b`` is filled with the value ``b`` (all channels) and its mask with ``b``: pixels name their source."""
    ids = torch.arange(batch).view(batch, 1, 1).expand(batch, height, width)
    return ids.float().unsqueeze(1).repeat(1, 3, 1, 1), ids.clone().long()


def test_p0_is_identity():
    images, masks = labelled_batch()
    out_images, out_masks = CutMix(p=0.0)(images, masks, torch.Generator().manual_seed(0))
    assert out_images is images and out_masks is masks


def test_image_and_mask_get_the_same_box_from_the_same_partner():
    images, masks = labelled_batch()
    original = images.clone()
    changed = 0
    for seed in range(10):
        out_images, out_masks = CutMix(p=1.0)(images, masks, torch.Generator().manual_seed(seed))
        assert torch.equal(images, original)  # inputs untouched
        # every pixel of every channel still names the source its mask label names
        assert torch.equal(out_images, out_masks.float().unsqueeze(1).expand_as(out_images))
        for b in range(len(masks)):
            moved = (out_masks[b] != b).nonzero()
            if len(moved):
                changed += 1
                (y0, x0), (y1, x1) = moved.min(0).values, moved.max(0).values
                box = out_masks[b, y0 : y1 + 1, x0 : x1 + 1]
                assert (box == box[0, 0]).all() and box[0, 0] != b  # one rectangle, from one partner
    assert changed > 10


def test_same_generator_seed_same_result_and_boxes_stay_inside():
    images, masks = labelled_batch()
    cutmix = CutMix(p=1.0, alpha=0.5)
    a = cutmix(images, masks, torch.Generator().manual_seed(7))
    b = cutmix(images, masks, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    generator = torch.Generator().manual_seed(1)
    areas = []
    for _ in range(300):
        y0, y1, x0, x1 = cutmix.sample_box(40, 50, generator)
        assert 0 <= y0 <= y1 <= 40 and 0 <= x0 <= x1 <= 50
        areas.append((y1 - y0) * (x1 - x0) / 2000)
    assert 0.1 < sum(areas) / len(areas) < 0.5  # mean 1 - E[lam] = 0.5 before clipping at the border


def test_batch_of_one_is_left_alone():
    images, masks = labelled_batch(batch=1)
    assert CutMix(p=1.0)(images, masks, torch.Generator())[1] is masks


def test_from_config_checks_keys_and_values():
    assert from_config(None) is None
    cutmix = from_config({"p": 0.3, "alpha": 2})
    assert (cutmix.p, cutmix.alpha) == (0.3, 2.0)
    with pytest.raises(SegkitError, match=r"data.train.cutmix: unknown key 'alpah'.*'alpha'"):
        from_config({"alpah": 1.0})
    with pytest.raises(SegkitError, match=r"data.train.cutmix.p must be a probability"):
        from_config({"p": 1.5})
    with pytest.raises(SegkitError, match=r"data.train.cutmix.alpha must be a positive number"):
        from_config({"alpha": 0})
    with pytest.raises(SegkitError, match=r"must be None or a dict"):
        from_config(0.5)
