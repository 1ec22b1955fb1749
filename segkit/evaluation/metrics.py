"""Dataset-level segmentation metrics from one confusion matrix.

Pixel counts are summed over the whole split (and over ranks in DDP) *before* any ratio is taken, so
mIoU is the number of the dataset, not an average of per-image or per-batch IoUs that overweights
small images and rare classes.

Absent-class policy:

- a class with no ground-truth pixels and no predicted pixels has every metric ``None`` (``null`` in
  JSON) and is left out of every mean: nothing was there to get right or wrong;
- a class that is predicted but never in the ground truth has IoU 0 and Dice 0 and *does* count in
  mIoU / mDice (those pixels are real false positives); its Acc (recall) is ``None`` and left out of mAcc;
- Precision is ``None`` for a class that is never predicted.

Ignored pixels (``ignore_index`` in the target) never reach the matrix, whatever was predicted there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from segkit.errors import SegkitError


class MetricInputError(SegkitError, ValueError):
    """Bad labels or shapes fed to the metrics: a ValueError for callers, a one-line error for the CLIs."""


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """Count ``(gt, pred)`` pixel pairs: an int64 ``(C, C)`` matrix, rows = ground truth, cols = prediction.

    ``pred`` and ``target`` are integer tensors of one shape on one device (any integer dtype); pixels whose
    target is ``ignore_index`` are never counted and their predictions are not range-checked.
    """
    if num_classes < 1:
        raise MetricInputError(f"num_classes must be >= 1, got {num_classes}")
    if pred.shape != target.shape:
        raise MetricInputError(
            f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}; "
            "resize the prediction to the target size before computing metrics"
        )
    if pred.device != target.device:
        raise MetricInputError(f"prediction is on {pred.device} but target is on {target.device}; move both")
    for name, t in (("prediction", pred), ("target", target)):
        if t.is_floating_point() or t.is_complex():
            raise MetricInputError(f"{name} must hold integer class indices, got dtype {t.dtype}")

    # int64 first: comparisons with ignore_index and the t * C + p index must not wrap in narrow dtypes.
    t = target.reshape(-1).to(torch.int64)
    p = pred.reshape(-1).to(torch.int64)
    ignored = t == ignore_index
    # Ignored pixels count as class 0 here and are sent to a dropped extra bin below, which is cheaper
    # than compacting the batch with a boolean mask.
    index = t.masked_fill(ignored, 0)
    _check_range(index, ignored, num_classes, "target",
                 f" and is not ignore_index {ignore_index}; fix the masks or num_classes")
    _check_range(p, ignored, num_classes, "prediction", "; num_classes does not match the model's outputs")

    sentinel = num_classes * num_classes
    index *= num_classes
    index += p
    index.masked_fill_(ignored, sentinel)
    counts = torch.bincount(index, minlength=sentinel + 1)[:sentinel]
    return counts.reshape(num_classes, num_classes)


def per_image_confusion(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """``(B, C, C)`` int64: one confusion matrix per image of a ``(B, H, W)`` batch, in one ``bincount``.

    For choosing images to look at (the worst ones, the ones that show a class), not for reporting:
    per-image ratios overweight small images. Values must already be range-checked, as
    :func:`confusion_matrix` does.
    """
    batch = target.shape[0]
    t = target.reshape(batch, -1).to(torch.int64)
    p = pred.reshape(batch, -1).to(torch.int64)
    cells = num_classes * num_classes
    # Image b's pairs land in bins [b * C * C, (b + 1) * C * C); ignored pixels in one dropped extra bin.
    index = t * num_classes
    index += p
    index += torch.arange(0, batch * cells, cells, device=t.device).unsqueeze(1)
    index.masked_fill_(t == ignore_index, batch * cells)
    counts = torch.bincount(index.reshape(-1), minlength=batch * cells + 1)[: batch * cells]
    return counts.reshape(batch, num_classes, num_classes)


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """float64 IoU of every class from ``(..., C, C)`` confusion matrices; NaN where a class is in neither map."""
    cm = cm.to(torch.float64)
    tp = cm.diagonal(dim1=-2, dim2=-1)
    union = cm.sum(dim=-1) + cm.sum(dim=-2) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))


def image_mious(cms: torch.Tensor) -> list[float | None]:
    """mIoU of each image from ``(B, C, C)`` per-image matrices: mean over the classes in its GT or prediction."""
    ious = iou_per_class(cms).cpu()
    present = ~ious.isnan()
    return [float(row[keep].mean()) if keep.any() else None for row, keep in zip(ious, present)]


def _check_range(values: torch.Tensor, ignored: torch.Tensor, num_classes: int, name: str, hint: str) -> None:
    """Raise on a counted value outside ``[0, C)``; ignored pixels may hold anything.

    One ``aminmax`` settles the usual case; the element-wise search for the culprit runs only on failure.
    """
    if values.numel() == 0:
        return
    low, high = torch.aminmax(values)
    if 0 <= int(low) and int(high) < num_classes:
        return
    bad = ~ignored & ((values < 0) | (values >= num_classes))
    if bool(bad.any()):
        raise MetricInputError(f"{name} value {int(values[bad][0])} is outside [0, {num_classes}){hint}")


def metrics_from_confusion(cm: torch.Tensor | np.ndarray, class_names: Sequence[str]) -> dict:
    """mIoU, mAcc, aAcc, mDice, fwIoU and per-class IoU / Acc / Precision / Dice, as Python floats or None.

    ``cm`` is a confusion matrix as built by :func:`confusion_matrix` (rows = GT). Everything is
    computed in float64; see the module docstring for when a value is ``None``.
    """
    if isinstance(cm, torch.Tensor):
        cm = cm.detach().cpu().numpy()
    cm = np.asarray(cm, dtype=np.float64)
    names = list(class_names)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(names):
        raise MetricInputError(
            f"confusion matrix has shape {cm.shape} but {len(names)} class names were given; "
            "it must be square with one row per class"
        )
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise MetricInputError(f"class name {dup!r} appears twice; class names must be unique")
    if (cm < 0).any():
        raise MetricInputError("confusion matrix has negative counts; it must hold pixel counts")

    tp = np.diag(cm)
    gt = cm.sum(axis=1)  # TP + FN
    predicted = cm.sum(axis=0)  # TP + FP
    union = gt + predicted - tp  # TP + FP + FN
    total = cm.sum()

    iou = _ratio(tp, union)
    acc = _ratio(tp, gt)
    precision = _ratio(tp, predicted)
    dice = _ratio(2 * tp, gt + predicted)

    present = union > 0
    fw_iou = float(np.sum(gt[present] / total * (tp[present] / union[present]))) if total > 0 else None
    return {
        "mIoU": _mean(iou),
        "mAcc": _mean(acc),
        "aAcc": float(tp.sum() / total) if total > 0 else None,
        "mDice": _mean(dice),
        "fwIoU": fw_iou,
        "IoU": dict(zip(names, iou, strict=True)),
        "Acc": dict(zip(names, acc, strict=True)),
        "Precision": dict(zip(names, precision, strict=True)),
        "Dice": dict(zip(names, dice, strict=True)),
    }


def _ratio(num: np.ndarray, den: np.ndarray) -> list[float | None]:
    """Element-wise ``num / den`` as Python floats, ``None`` where the denominator is zero."""
    return [float(n / d) if d > 0 else None for n, d in zip(num, den, strict=True)]


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None
