"""Boundary IoU (Cheng et al., CVPR 2021): IoU restricted to a thin band inside each class's contours.

Mask IoU of a large object barely moves when its outline gets sharper, so a boundary-weighted loss can look
useless by mIoU. Boundary IoU compares only the pixels within ``d`` of each mask's contour, where
``d = max(1, round(dilation_ratio * image diagonal))`` (the paper's 2% default):

    G_d = pixels of class c in the ground truth within d of a pixel that is not c (or of the image edge)
    P_d = the same for the prediction
    BoundaryIoU_c = |G_d & P_d| / |G_d | P_d|

"Within d" is the Chebyshev distance, i.e. the paper's reference implementation (``d`` erosions with a 3x3
kernel, zero padding outside the image). Counts are summed over the whole split before dividing, like the
confusion matrix. Pixels whose target is ``ignore_index`` are never counted; an ignored region still ends
the ground-truth mask next to it, so class pixels that touch it are boundary pixels.

For one label map, "pixel p of class c is within d of a pixel that is not c" is the same as "the
(2d+1)^2 window around p holds two different labels", so every class's band comes from one max/min
filter of the label map instead of one erosion per class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from segkit.evaluation.metrics import MetricInputError


def boundary_width(height: int, width: int, dilation_ratio: float = 0.02) -> int:
    """The band width ``d`` in pixels for an image of this size (at least 1)."""
    return max(1, int(round(dilation_ratio * math.hypot(height, width))))


def boundary_band(labels: torch.Tensor, width: int) -> torch.Tensor:
    """``(B, H, W)`` bool: pixels within ``width`` of a pixel with another label or of the image edge."""
    x = labels.unsqueeze(1).to(torch.float32)  # class indices and 255 are exact in float32
    size = 2 * width + 1

    def window_max(t: torch.Tensor) -> torch.Tensor:
        # A square max filter as two 1-D passes: O(d) per pixel instead of O(d^2); padding counts as -inf.
        t = F.max_pool2d(t, (1, size), stride=1, padding=(0, width))
        return F.max_pool2d(t, (size, 1), stride=1, padding=(width, 0))

    band = (window_max(x) != -window_max(-x)).squeeze(1)
    band[:, :width, :] = True
    band[:, -width:, :] = True
    band[:, :, :width] = True
    band[:, :, -width:] = True
    return band


def boundary_counts(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int = 255,
    dilation_ratio: float = 0.02,
) -> torch.Tensor:
    """int64 ``(3, C)``: per class ``|G_d & P_d|``, ``|G_d|``, ``|P_d|`` over the non-ignored pixels of a batch.

    ``pred`` and ``target`` are ``(B, H, W)`` or ``(H, W)`` class-index tensors with values already
    checked (as :func:`segkit.evaluation.metrics.confusion_matrix` does).
    """
    if pred.shape != target.shape or pred.ndim not in (2, 3):
        raise MetricInputError(
            f"Boundary IoU needs prediction and target of one (B, H, W) or (H, W) shape, got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.ndim == 2:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    d = boundary_width(target.shape[-2], target.shape[-1], dilation_ratio)
    t = target.to(torch.int64)
    p = pred.to(torch.int64)
    valid = t != ignore_index
    gt_band = boundary_band(t, d) & valid
    pred_band = boundary_band(p, d) & valid

    def per_class(labels: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        # Dropped pixels go to one extra bin: no compaction of the batch by boolean indexing.
        index = labels.masked_fill(~keep, num_classes).reshape(-1)
        return torch.bincount(index, minlength=num_classes + 1)[:num_classes]

    both = gt_band & pred_band & (t == p)
    return torch.stack([per_class(t, both), per_class(t, gt_band), per_class(p, pred_band)])


def boundary_iou_from_counts(counts: torch.Tensor, class_names: Sequence[str]) -> dict:
    """``{"mBoundaryIoU": float | None, "BoundaryIoU": {class: float | None}}`` from summed counts.

    Same absent-class policy as mask IoU: no boundary pixels in either map -> ``None``, left out of the mean;
    a class only predicted has 0 and counts.
    """
    inter, gt_area, pred_area = (row.tolist() for row in counts.detach().cpu().to(torch.int64))
    values = []
    for i, g, p in zip(inter, gt_area, pred_area, strict=True):
        union = g + p - i
        values.append(i / union if union > 0 else None)
    kept = [v for v in values if v is not None]
    return {
        "mBoundaryIoU": sum(kept) / len(kept) if kept else None,
        "BoundaryIoU": dict(zip(class_names, values, strict=True)),
    }
