"""Softmax focal loss and its boundary-weighted variant.

Softmax (not one-vs-all sigmoid) focal loss: ``l_i = -(1 - p_t)^gamma log p_t`` with ``p_t`` the softmax
probability of the pixel's true class, weighted per class (the ``alpha_t`` of the focal-loss paper; a scalar
alpha would cancel in the weighted mean) and normalised by the summed weights of valid pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from segkit.losses.base import PixelLoss, check_number, serial_on_cpu
from segkit.losses.boundary_weights import boundary_weights
from segkit.registry import LOSSES

EPS = torch.finfo(torch.float32).eps


class _FocalTerm(torch.autograd.Function):
    """``(1 - p)^gamma * nll`` with ``p = exp(-nll)`` and a hand-written derivative.

    Five map ops forward and four backward, run on one thread (see ``serial_on_cpu``), instead of about
    fifteen autograd ops. ``1 - p`` is floored at float32 epsilon, below which ``exp`` cannot resolve it
    anyway (``-expm1`` could, but is 20x slower on the CPU); the floor keeps ``q^(gamma - 1)`` finite for
    ``gamma < 1`` where the term and its gradient are negligible.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, nll: torch.Tensor, gamma: float) -> torch.Tensor:
        with serial_on_cpu(nll.device):
            p = nll.neg().exp_()
            q = torch.rsub(p, 1.0).clamp_(min=EPS)
            ctx.save_for_backward(nll, p, q)
            ctx.gamma = gamma
            return q.pow(gamma).mul_(nll)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        nll, p, q = ctx.saved_tensors
        with serial_on_cpu(grad.device):
            # d/dnll [q^g nll] = q^(g-1) (q + g p nll), since dq/dnll = p
            return q.pow(ctx.gamma - 1).mul_(torch.addcmul(q, p, nll, value=ctx.gamma)).mul_(grad), None


def focal_term(nll: torch.Tensor, gamma: float) -> torch.Tensor:
    """``(1 - p)^gamma (-log p)`` from ``nll = -log p``; at ``gamma = 0`` exactly the cross-entropy term."""
    if gamma == 0:
        return nll
    return _FocalTerm.apply(nll, gamma)


@LOSSES.register()
class Focal(PixelLoss):
    """Mean softmax focal loss over valid pixels; ``gamma=0`` gives (class-weighted) cross-entropy."""

    def __init__(self, ignore_index: int = 255, gamma: float = 2.0,
                 class_weights: Sequence[float] | None = None) -> None:
        super().__init__(ignore_index, class_weights)
        self.gamma = check_number(gamma, f"{type(self).__name__}.gamma")

    def pixel_losses(self, log_probs: torch.Tensor, nll: torch.Tensor) -> torch.Tensor:
        return focal_term(nll, self.gamma)


@LOSSES.register()
class BoundaryFocal(Focal):
    """Focal loss weighted ``w_i = alpha_{y_i} (1 + w_b exp(-d_i^2 / (2 sigma^2)))``, ``d_i`` = distance to
    the nearest class boundary in the ground truth (see ``segkit.losses.boundary_weights``), divided by ``sum_i w_i``.

    The normalisation keeps the loss a weighted *mean*: raising ``boundary_weight`` shifts emphasis towards
    edges without changing the loss scale, so learning rates tuned for Focal still apply.
    """

    def __init__(self, ignore_index: int = 255, gamma: float = 2.0,
                 class_weights: Sequence[float] | None = None, boundary_weight: float = 2.0,
                 sigma: float = 3.0) -> None:
        super().__init__(ignore_index, gamma, class_weights)
        self.boundary_weight = check_number(boundary_weight, "BoundaryFocal.boundary_weight")
        self.sigma = check_number(sigma, "BoundaryFocal.sigma (pixels)", positive=True)

    def pixel_weights(self, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        weights = boundary_weights(target, valid, self.boundary_weight, self.sigma)
        if self.class_weights is not None:
            weights *= self.class_weights[target.masked_fill(~valid, 0)]
        return weights
