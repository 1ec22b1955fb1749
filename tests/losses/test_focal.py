import math

import torch
import torch.nn.functional as F

from segkit.losses.boundary_weights import boundary_weights
from segkit.losses.focal import BoundaryFocal, Focal, focal_term


def batch(seed: int):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 4, 9, 8, generator=generator) * 2
    target = torch.randint(0, 4, (2, 9, 8), generator=generator)
    target[:, :3, :2] = 255
    return logits, target


def test_gamma_zero_with_uniform_weights_equals_torch_cross_entropy():
    logits, target = batch(0)
    expected = F.cross_entropy(logits, target, ignore_index=255)
    assert torch.allclose(Focal(gamma=0.0)(logits, target), expected)
    assert torch.allclose(Focal(gamma=0.0, class_weights=[1.0] * 4)(logits, target), expected)
    weights = [0.1, 1.0, 2.0, 0.7]
    expected = F.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=255)
    assert torch.allclose(Focal(gamma=0.0, class_weights=weights)(logits, target), expected)


def test_focal_is_the_softmax_formula_with_class_weights():
    logits, target = batch(1)
    weights = torch.tensor([0.5, 1.0, 2.0, 3.0])
    p = torch.softmax(logits.double(), 1)
    valid = target != 255
    safe = target.clamp(max=3)
    p_t = p.gather(1, safe[:, None])[:, 0]
    alpha = weights.double()[safe]
    per_pixel = -alpha * (1 - p_t) ** 2.5 * torch.log(p_t)
    expected = per_pixel[valid].sum() / alpha[valid].sum()
    loss = Focal(gamma=2.5, class_weights=weights.tolist())(logits, target)
    assert torch.allclose(loss.double(), expected, rtol=1e-5)


def test_single_pixel_hand_value():
    logits = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1)  # p = (0.25, 0.75)
    loss = Focal(gamma=2.0)(logits, torch.tensor([[[1]]]))
    assert math.isclose(loss.item(), -(0.25**2) * math.log(0.75), rel_tol=1e-6)


def test_boundary_focal_is_the_boundary_weighted_mean_of_focal_terms():
    logits, target = batch(2)
    valid = target != 255
    safe = target.masked_fill(~valid, 0)
    weights = boundary_weights(safe, valid, 3.0, 1.5) * torch.tensor([1.0, 2.0, 0.5, 1.0])[safe]
    p_t = torch.softmax(logits, 1).gather(1, safe[:, None])[:, 0]
    per_pixel = -(1 - p_t) ** 2 * torch.log(p_t)
    expected = (weights * per_pixel).sum() / weights.sum()
    loss = BoundaryFocal(gamma=2.0, class_weights=[1.0, 2.0, 0.5, 1.0], boundary_weight=3.0, sigma=1.5)
    assert torch.allclose(loss(logits, target), expected, rtol=1e-5)


def test_boundary_weight_zero_is_plain_focal():
    logits, target = batch(3)
    assert torch.allclose(BoundaryFocal(boundary_weight=0.0)(logits, target), Focal()(logits, target))


def test_hand_written_focal_gradient_matches_numerical_and_autograd():
    nll = torch.linspace(0.05, 6.0, 9, dtype=torch.float64).requires_grad_()
    for gamma in (0.5, 2.0, 3.5):
        assert torch.autograd.gradcheck(lambda x, g=gamma: focal_term(x, g), (nll,))
        (manual,) = torch.autograd.grad(focal_term(nll, gamma).sum(), nll)
        (reference,) = torch.autograd.grad(((1 - torch.exp(-nll)) ** gamma * nll).sum(), nll)
        assert torch.allclose(manual, reference)
