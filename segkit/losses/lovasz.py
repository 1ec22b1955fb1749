"""Lovasz-Softmax loss (Berman, Rannen Triki, Blaschko, CVPR 2018): a convex surrogate of 1 - IoU."""

from __future__ import annotations

import torch
from torch import nn

from segkit.errors import SegkitError
from segkit.losses.base import check_inputs, float_log_probs
from segkit.registry import LOSSES


def lovasz_per_class(errors: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``(G, C)`` Lovasz extension of the Jaccard loss from ``(G, C, N)`` errors and 0/1 ground truth.

    Errors sorted in decreasing order are dotted with the increments of the Jaccard loss of the growing
    set of worst pixels (the Lovasz extension's gradient, computed with cumulative sums).
    """
    errors, order = errors.sort(dim=-1, descending=True)
    truth = truth.gather(-1, order)
    positives = truth.sum(dim=-1, keepdim=True)
    intersection = positives - truth.cumsum(dim=-1)
    union = positives + (1.0 - truth).cumsum(dim=-1)
    jaccard = 1.0 - intersection / union
    increments = torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)
    return (errors * increments).sum(dim=-1)


@LOSSES.register()
class LovaszSoftmax(nn.Module):
    """Mean Lovasz-Softmax over classes present in the ground truth (Berman's ``classes='present'``).

    ``per_image=True`` averages the per-image losses over images with valid pixels, otherwise the batch is
    one flattened image. Ignored pixels get error 0 and no ground truth: they sort after every pixel with a
    positive error, so the loss is exactly that of the valid pixels alone, and their gradient is 0.
    A region loss: it does not split into per-pixel sums for exact gradient accumulation.
    """

    def __init__(self, ignore_index: int = 255, per_image: bool = False) -> None:
        super().__init__()
        if not isinstance(per_image, bool):
            raise SegkitError(f"LovaszSoftmax.per_image must be True or False, got {per_image!r}")
        self.ignore_index = ignore_index
        self.per_image = per_image

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_inputs(logits, target, "LovaszSoftmax")
        batch, num_classes = logits.shape[:2]
        target = target.long()
        valid = (target != self.ignore_index).unsqueeze(1)
        classes = torch.arange(num_classes, device=logits.device).view(1, -1, 1, 1)
        truth = ((target.unsqueeze(1) == classes) & valid).float()
        errors = torch.where(valid, (truth - float_log_probs(logits).exp()).abs(), 0.0)
        groups = batch if self.per_image else 1
        if not self.per_image:
            errors, truth = errors.transpose(0, 1), truth.transpose(0, 1)
        errors = errors.reshape(groups, num_classes, -1)
        truth = truth.reshape(groups, num_classes, -1)
        present = truth.sum(dim=-1) > 0
        per_class = torch.where(present, lovasz_per_class(errors, truth), 0.0)
        per_group = per_class.sum(dim=1) / present.sum(dim=1).clamp(min=1)
        counted = present.any(dim=1)
        return per_group.sum() / counted.sum().clamp(min=1)
