"""Sliding windows: mmsegmentation's grid, count-averaged scores, and a large image with a small crop."""

from __future__ import annotations

import pytest
import torch

from segkit.errors import SegkitError
from segkit.inference.predictor import Member, Predictor
from segkit.inference.tta import TTASpec
from segkit.inference.window import SlidingWindow, parse_slide, window_from_config
from segkit.models.builder import build_model


def test_windows_start_every_stride_and_the_last_ones_are_shifted_inside():
    boxes = SlidingWindow(crop=32, stride=20).boxes(50, 70)
    rows = [(0, 32), (18, 50)]  # 0..32, then 20..52 shifted back to end at 50
    cols = [(0, 32), (20, 52), (38, 70)]  # 0, 20, then 40..72 shifted back to 38..70
    assert boxes == [(y1, y2, x1, x2) for y1, y2 in rows for x1, x2 in cols]
    assert SlidingWindow(64, 32).boxes(40, 20) == [(0, 40, 0, 20)]  # smaller than the crop: one window


def test_slide_equals_a_direct_computation_on_a_crafted_case(toy_member):
    images = torch.randint(0, 256, (2, 3, 50, 70), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    member = toy_member()
    probs = Predictor([member], window=SlidingWindow(32, 20), batch_size=4).predict_batch(images).probs

    x = images.float()
    total = torch.zeros(2, 4, 50, 70)
    count = torch.zeros(50, 70)
    with torch.no_grad():
        for y1 in (0, 18):
            for x1 in (0, 20, 38):
                window = x[:, :, y1:y1 + 32, x1:x1 + 32]
                total[:, :, y1:y1 + 32, x1:x1 + 32] += torch.softmax(member.model(window), 1)
                count[y1:y1 + 32, x1:x1 + 32] += 1
    assert count.min() == 1 and count.max() == 4
    torch.testing.assert_close(probs, total / count, atol=1e-5, rtol=0)
    # The windows matter: the whole-image prediction of this position-dependent model is different.
    whole = Predictor([member]).predict_batch(images).probs
    assert (whole - probs).abs().max() > 0.05


def test_slide_with_logit_merge_averages_window_logits(toy_member):
    images = torch.randint(0, 256, (1, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    member = toy_member()
    probs = Predictor([member], tta=TTASpec(merge="logit"), window=SlidingWindow(24, 16)).predict_batch(images).probs
    x = images.float()
    with torch.no_grad():
        total = torch.zeros(1, 4, 40, 40)
        count = torch.zeros(40, 40)
        for y1 in (0, 16):
            for x1 in (0, 16):
                total[..., y1:y1 + 24, x1:x1 + 24] += member.model(x[..., y1:y1 + 24, x1:x1 + 24])
                count[y1:y1 + 24, x1:x1 + 24] += 1
    torch.testing.assert_close(probs, torch.softmax(total / count, 1), atol=1e-5, rtol=0)


@pytest.mark.parametrize("scales", [(0.75,), (1.0,), (1.25,), (0.75, 1.0, 1.25)])
@pytest.mark.parametrize(("mode", "merge"), [("none", "prob"), ("flip", "prob"), ("flip", "logit")])
def test_a_window_covering_the_image_equals_the_whole_image_at_every_scale(scales, mode, merge, toy_member):
    """One order of softmax and resize on both paths: a window holding the whole (scaled) image changes nothing."""
    images = torch.randint(0, 256, (2, 3, 37, 45), dtype=torch.uint8, generator=torch.Generator().manual_seed(6))
    member = toy_member(multiple=8)
    spec = TTASpec(mode, scales, merge)
    whole = Predictor([member], tta=spec).predict_batch(images)
    slide = Predictor([member], tta=spec, window=SlidingWindow(64, 64)).predict_batch(images)
    torch.testing.assert_close(slide.probs, whole.probs, atol=1e-5, rtol=0)
    assert (slide.labels == whole.labels).float().mean() > 0.999


def test_a_1024x768_image_predicts_with_a_256_crop():
    torch.manual_seed(0)
    model = build_model(dict(type="Unet", encoder_name="resnet18", encoder_weights=None, encoder_depth=3,
                             decoder_channels=(16, 8, 8)), num_classes=5)
    seen = []
    model.net.register_forward_hook(lambda mod, inp, out: seen.append(tuple(inp[0].shape)))
    image = torch.randint(0, 256, (3, 768, 1024), dtype=torch.uint8)
    pred = Predictor([Member(model)], window=SlidingWindow(256, 256), batch_size=6).predict(image)
    assert pred.probs.shape == (5, 768, 1024) and pred.labels.shape == (768, 1024)
    torch.testing.assert_close(pred.probs.sum(0), torch.ones(768, 1024))
    assert [shape[0] for shape in seen] == [6, 6] and {shape[1:] for shape in seen} == {(3, 256, 256)}


@pytest.mark.parametrize("text", ["256", "256,", "a,b", "256,300", "0,0", "256,128,64", "-1,5"])
def test_malformed_slide_is_a_one_line_error(text):
    with pytest.raises(SegkitError, match="--slide"):
        parse_slide(text)


def test_slide_from_the_config():
    assert window_from_config({"mode": "whole", "crop": None, "stride": None}) is None
    assert window_from_config({"mode": "slide", "crop": 512, "stride": 341}) == SlidingWindow(512, 341)
    with pytest.raises(SegkitError, match="test.crop and test.stride"):
        window_from_config({"mode": "slide", "crop": 512, "stride": None})
    with pytest.raises(SegkitError, match="stride <= crop"):
        window_from_config({"mode": "slide", "crop": 256, "stride": 512})
