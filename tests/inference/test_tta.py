"""TTA against direct computations: transform the input, forward, undo, softmax, mean."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import ttach

from segkit.errors import SegkitError
from segkit.inference.predictor import Member, Predictor
from segkit.inference.tta import TTASpec, parse_scales, scaled_size

# Every view written out by hand (not with ttach): (augment, undo) pairs.
HFLIP = (lambda x: x.flip(-1), lambda y: y.flip(-1))
VFLIP = (lambda x: x.flip(-2), lambda y: y.flip(-2))
IDENTITY = (lambda x: x, lambda y: y)


def rotation(k: int):
    return lambda x: torch.rot90(x, k, dims=(-2, -1)), lambda y: torch.rot90(y, -k, dims=(-2, -1))


def flipped_then_rotated(k: int):
    return lambda x: torch.rot90(x.flip(-1), k, dims=(-2, -1)), lambda y: torch.rot90(y, -k, dims=(-2, -1)).flip(-1)


DIRECT_VIEWS = {
    "flip": [IDENTITY, HFLIP],
    "hvflip": [IDENTITY, HFLIP, VFLIP, (lambda x: x.flip(-1, -2), lambda y: y.flip(-1, -2))],
    "d4": [rotation(k) for k in range(4)] + [flipped_then_rotated(k) for k in range(4)],
}


def direct(model, images: torch.Tensor, views) -> torch.Tensor:
    x = images.float()
    with torch.no_grad():
        probs = [undo(torch.softmax(model(aug(x)), dim=1)) for aug, undo in views]
    return torch.stack(probs).mean(0)


def predicted(member, mode: str, images: torch.Tensor, batch_size: int = 3, **spec):
    out = Predictor([member], tta=TTASpec(mode, **spec), batch_size=batch_size).predict_batch(images)
    return out.probs, member.model


@pytest.mark.parametrize("mode", ["flip", "hvflip", "d4"])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_views_equal_a_direct_computation_on_odd_non_square_images(mode, batch_size, images, toy_member):
    probs, model = predicted(toy_member(), mode, images, batch_size)
    assert probs.shape == (2, 4, 37, 23)
    torch.testing.assert_close(probs, direct(model, images, DIRECT_VIEWS[mode]), atol=1e-5, rtol=0)


def test_the_model_is_not_equivariant_so_a_wrong_undo_shows(images, toy_member):
    """A rotation undone the wrong way (by +k instead of -k) gives a clearly different answer."""
    _, model = predicted(toy_member(), "none", images)
    wrong = [(aug, lambda y, k=k: torch.rot90(y, k, dims=(-2, -1)))
             for k, (aug, _) in enumerate(DIRECT_VIEWS["d4"][:4])]
    wrong += DIRECT_VIEWS["d4"][4:]
    gap = (direct(model, images, wrong) - direct(model, images, DIRECT_VIEWS["d4"])).abs().max()
    assert gap > 0.05


def test_d4_check_fails_when_segkit_undoes_a_rotation_the_wrong_way(images, monkeypatch, toy_member):
    """The same check as above, with ttach's rotation undo replaced by the wrong direction, must fail."""
    monkeypatch.setattr(ttach.transforms.Rotate90, "apply_deaug_mask",
                        lambda self, mask, angle=0, **kwargs: self.apply_aug_image(mask, angle))
    probs, model = predicted(toy_member(), "d4", images)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(probs, direct(model, images, DIRECT_VIEWS["d4"]), atol=1e-5, rtol=0)


def test_logit_merge_is_the_softmax_of_the_mean_logits(images, toy_member):
    probs, model = predicted(toy_member(), "flip", images, merge="logit")
    x = images.float()
    with torch.no_grad():
        mean = (model(x) + model(x.flip(-1)).flip(-1)) / 2
    torch.testing.assert_close(probs, torch.softmax(mean, 1), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("height", "width", "scales"), [
    (360, 480, (0.5, 0.77, 1.0, 1.33)),
    (101, 75, (0.3, 0.9, 1.7)),
    (101, 75, (2.05,)),
])
def test_multi_scale_keeps_the_aspect_ratio_and_resizes_back_to_the_exact_size(height, width, scales, toy_member):
    images = torch.randint(0, 256, (1, 3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    member = toy_member(multiple=8)
    seen = []
    member.model.net.register_forward_hook(lambda mod, inp, out: seen.append(tuple(inp[0].shape[-2:])))
    probs = Predictor([member], tta=TTASpec("flip", scales), batch_size=4).predict_batch(images).probs
    assert probs.shape == (1, 4, height, width)
    torch.testing.assert_close(probs.sum(1), torch.ones(1, height, width))

    expected_sizes = [scaled_size(height, width, s) if s != 1.0 else (height, width) for s in scales]
    for scale, (h, w) in zip(scales, expected_sizes):
        assert abs(h - height * scale) <= 0.5 and abs(w - width * scale) <= 0.5
    views = []
    for size in expected_sizes:
        for aug, undo in DIRECT_VIEWS["flip"]:
            def scaled_aug(x, aug=aug, size=size):
                return aug(F.interpolate(x, size=size, mode="bilinear", align_corners=False))

            def scaled_undo(y, undo=undo):
                return F.interpolate(undo(y), size=(height, width), mode="bilinear", align_corners=False)

            views.append((scaled_aug, scaled_undo))
    torch.testing.assert_close(probs, direct(member.model, images, views), atol=1e-5, rtol=0)
    # The network saw the scaled sizes padded to its stride (PaddedSegmenter), each side on its own.
    assert sorted(set(seen)) == sorted({(-(-h // 8) * 8, -(-w // 8) * 8) for h, w in expected_sizes})


@pytest.mark.parametrize("scale", [0.5, 0.75, 1.1, 1.25, 2.0])
def test_each_side_keeps_its_own_scale_within_one_pixel(scale, toy_member):
    """97x131 at 0.5 once became 64x64 (both sides rounded to stride 32): the aspect ratio must survive."""
    member = toy_member(multiple=32)
    seen = []
    member.model.net.register_forward_hook(lambda mod, inp, out: seen.append(tuple(inp[0].shape[-2:])))
    sizes = [view.size for view in TTASpec("none", (scale,)).views(97, 131)]
    assert len(sizes) == 1 and abs(sizes[0][0] - 97 * scale) <= 1 and abs(sizes[0][1] - 131 * scale) <= 1
    Predictor([member], tta=TTASpec("none", (scale,))).predict_batch(torch.zeros(1, 3, 97, 131, dtype=torch.uint8))
    assert seen == [tuple(-(-side // 32) * 32 for side in sizes[0])]  # padded by the model, not resized to it
    assert scaled_size(97, 131, 0.001) == (1, 1)


def test_single_view_labels_are_the_argmax_of_the_logits_even_where_softmax_ties():
    """Two logits one float apart: softmax rounds them to one probability, validation's argmax does not."""
    low = torch.tensor(0.1)
    high = torch.nextafter(low, torch.tensor(1.0))

    class Tied(torch.nn.Module):
        def forward(self, images):
            shape = (images.shape[0], 1, *images.shape[-2:])
            return torch.cat([low.expand(shape), high.expand(shape)], dim=1)

    probs = torch.softmax(torch.stack([low, high]), 0)
    assert probs[0] == probs[1]  # the tie this test is about
    out = Predictor([Member(Tied())]).predict_batch(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    assert (out.labels == 1).all()


def test_parse_scales_and_bad_specs_are_one_line_errors():
    assert parse_scales("0.75,1.0,1.25") == (0.75, 1.0, 1.25)
    for bad in ("", "0.75,,1", "a,b", "-1", "0", "1,1"):
        with pytest.raises(SegkitError, match="--scales"):
            parse_scales(bad)
    with pytest.raises(SegkitError, match="--tta 'rot'"):
        TTASpec("rot")
    with pytest.raises(SegkitError, match="--merge"):
        TTASpec("flip", merge="max")


def test_views_of_one_shape_go_through_the_model_together(images, toy_member):
    member = toy_member()
    batches = []
    member.model.register_forward_hook(lambda mod, inp, out: batches.append(tuple(inp[0].shape)))
    Predictor([member], tta=TTASpec("d4"), batch_size=64).predict_batch(images)
    # 8 views x 2 images: 4 views keep 37x23, 4 rotate to 23x37; one forward per shape.
    assert sorted(batches) == [(8, 3, 23, 37), (8, 3, 37, 23)]


def test_the_worked_example_of_docs_inference_md():
    """Two views that disagree: averaging logits picks Plastic, averaging probabilities picks Paper."""
    seen_as_is = torch.tensor([0.0, -2.0, 1.0])  # logits of Background, Paper, Plastic for the image as it is
    seen_flipped = torch.tensor([0.0, 4.0, 2.0])  # ... for its mirror image (undone)

    class TwoOpinions(torch.nn.Module):
        """Constant logits per image, depending on which side of the image is brighter."""

        def forward(self, images):
            as_is = (images[:, 0, 0, 0] > images[:, 0, 0, -1]).view(-1, 1, 1, 1)
            logits = torch.where(as_is, seen_as_is.view(1, 3, 1, 1), seen_flipped.view(1, 3, 1, 1))
            return logits.expand(-1, -1, *images.shape[-2:])

    image = torch.tensor([[[[10, 0]]] * 3], dtype=torch.uint8).view(1, 3, 1, 2)
    member = Member(TwoOpinions())
    by_prob = Predictor([member], tta=TTASpec("flip")).predict_batch(image)
    by_logit = Predictor([member], tta=TTASpec("flip", merge="logit")).predict_batch(image)
    torch.testing.assert_close(by_prob.probs[0, :, 0, 0], torch.tensor([0.1377, 0.4510, 0.4113]), atol=1e-4, rtol=0)
    torch.testing.assert_close(by_logit.probs[0, :, 0, 0], torch.tensor([0.1220, 0.3315, 0.5466]), atol=1e-4, rtol=0)
    assert by_prob.labels.unique().tolist() == [1] and by_logit.labels.unique().tolist() == [2]
