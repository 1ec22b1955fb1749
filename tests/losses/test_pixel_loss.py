import pytest
import torch
import torch.nn.functional as F

from segkit.errors import SegkitError
from segkit.losses.cross_entropy import CrossEntropy
from segkit.losses.focal import BoundaryFocal, Focal


def batch(seed: int, shape=(4, 3, 6, 7)):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=generator) * 3
    target = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=generator)
    target[torch.rand(target.shape, generator=generator) < 0.2] = 255
    return logits, target


@pytest.mark.parametrize("loss_fn", [CrossEntropy(class_weights=[0.5, 1.0, 2.0]), Focal(gamma=1.5),
                                     BoundaryFocal(gamma=2.0, boundary_weight=4.0, sigma=1.0)])
def test_forward_is_sum_over_normaliser_and_terms_accumulate_exactly(loss_fn):
    logits, target = batch(0)
    total, normaliser = loss_fn.terms(logits, target)
    assert torch.allclose(loss_fn(logits, target), total / normaliser)
    # micro-batches of 1 and 3 images: summed numerators over summed normalisers = full-batch loss
    parts = [loss_fn.terms(logits[:1], target[:1]), loss_fn.terms(logits[1:], target[1:])]
    accumulated = sum(p[0] for p in parts) / sum(p[1] for p in parts)
    assert torch.allclose(accumulated, loss_fn(logits, target), rtol=1e-5)
    # ...which a mean of the two micro-batch losses is not
    averaged = (loss_fn(logits[:1], target[:1]) + loss_fn(logits[1:], target[1:])) / 2
    assert not torch.allclose(accumulated, averaged)


def test_label_smoothing_matches_torch():
    logits, target = batch(1)
    expected = F.cross_entropy(logits, target, ignore_index=255, label_smoothing=0.1)
    assert torch.allclose(CrossEntropy(label_smoothing=0.1)(logits, target), expected)


def test_smoothing_with_class_weights_is_a_weighted_mean_of_pixel_terms():
    logits, target = batch(2)
    weights = torch.tensor([0.5, 1.0, 2.0])
    log_p = F.log_softmax(logits, 1)
    valid = target != 255
    safe = target.clamp(max=2)
    per_pixel = 0.9 * -log_p.gather(1, safe[:, None])[:, 0] + 0.1 * -log_p.mean(1)
    expected = (weights[safe] * per_pixel)[valid].sum() / weights[safe][valid].sum()
    loss = CrossEntropy(class_weights=weights.tolist(), label_smoothing=0.1)(logits, target)
    assert torch.allclose(loss, expected)


@pytest.mark.parametrize("make, message", [
    (lambda: CrossEntropy(label_smoothing=1.0), "label_smoothing"),
    (lambda: Focal(gamma=-1.0), "gamma"),
    (lambda: Focal(class_weights=0.25), "class_weights"),
    (lambda: CrossEntropy(class_weights=[1.0, -2.0]), "class_weights"),
    (lambda: BoundaryFocal(sigma=0.0), "sigma"),
    (lambda: BoundaryFocal(sigma="3"), "sigma"),
    (lambda: BoundaryFocal(boundary_weight=-1.0), "boundary_weight"),
])
def test_bad_parameters_are_one_line_errors(make, message):
    with pytest.raises(SegkitError, match=message):
        make()


def test_wrong_number_of_class_weights_and_shape_mismatch_are_clear_errors():
    logits, target = batch(3)
    with pytest.raises(SegkitError, match="2 entries but the logits have 3 classes"):
        Focal(class_weights=[1.0, 2.0])(logits, target)
    with pytest.raises(SegkitError, match=r"got \(4, 3, 6, 7\) and \(4, 3, 7\)"):
        CrossEntropy()(logits, target[:, :3])
