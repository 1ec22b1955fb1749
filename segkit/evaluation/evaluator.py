"""Validation-time metric accumulation: reset / process each batch / evaluate once per split.

Only a ``(C, C)`` int64 confusion matrix is kept (plus ``3 x C`` boundary counts when Boundary IoU is on), on
the model's device, so evaluating a split costs one ``bincount`` per batch and, under DDP, one ``all_reduce``
of ``C * C`` (+ ``3 * C``) integers at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist

from segkit.evaluation.boundary_iou import boundary_counts, boundary_iou_from_counts
from segkit.evaluation.metrics import MetricInputError, confusion_matrix, metrics_from_confusion


class SegEvaluator:
    """Accumulates one confusion matrix over a whole split; see :mod:`segkit.evaluation.metrics`.

    ``boundary_iou=True`` adds per-class Boundary IoU (:mod:`segkit.evaluation.boundary_iou`) with a band of
    ``boundary_dilation`` x the image diagonal; it costs four max filters of each label map per batch.
    """

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str],
        ignore_index: int = 255,
        device: torch.device | str = "cpu",
        boundary_iou: bool = False,
        boundary_dilation: float = 0.02,
    ) -> None:
        if len(class_names) != num_classes:
            raise MetricInputError(
                f"num_classes is {num_classes} but {len(class_names)} class names were given; "
                "give one name per class"
            )
        self.num_classes = num_classes
        self.class_names = list(class_names)
        self.ignore_index = ignore_index
        if not 0 < boundary_dilation < 1:
            raise MetricInputError(f"boundary_dilation is {boundary_dilation}; give a fraction of the image "
                                   "diagonal in (0, 1), e.g. 0.02")
        self.boundary_dilation = boundary_dilation
        self._cm = torch.zeros((num_classes, num_classes), dtype=torch.int64, device=device)
        self._boundary = torch.zeros((3, num_classes), dtype=torch.int64, device=device) if boundary_iou else None
        self.last_confusion: torch.Tensor | None = None  # the reduced matrix behind the last evaluate()

    @property
    def boundary_iou(self) -> bool:
        return self._boundary is not None

    def reset(self) -> None:
        self._cm.zero_()
        if self._boundary is not None:
            self._boundary.zero_()

    @torch.no_grad()
    def process(self, logits_or_pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Add one batch: logits ``(B, C, H, W)`` (argmax taken here) or class indices ``(B, H, W)``.

        Returns the class-index prediction it counted, so code drawing the same batch need not take the
        argmax again. Without Boundary IoU any shape works for class indices (pixels are just counted);
        with it they must be ``(B, H, W)`` or one ``(H, W)`` image.
        """
        pred = logits_or_pred
        if pred.is_floating_point():
            if pred.ndim != 4 or pred.shape[1] != self.num_classes:
                raise MetricInputError(
                    f"logits must be (B, {self.num_classes}, H, W), got {tuple(pred.shape)}; "
                    "check model.num_classes"
                )
            if pred.shape[-2:] != target.shape[-2:]:
                raise MetricInputError(
                    f"logits are {tuple(pred.shape[-2:])} but target is {tuple(target.shape[-2:])}; "
                    "resize the logits to the target size (F.interpolate, bilinear) before process()"
                )
            pred = pred.max(dim=1).indices  # the argmax (first maximum), several times faster on CPU
        cm = confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        boundary = None
        if self._boundary is not None:
            boundary = boundary_counts(pred, target, self.num_classes, self.ignore_index, self.boundary_dilation)
        # Added only after both succeeded, so a rejected batch leaves no partial counts behind.
        self._cm += cm.to(self._cm.device)
        if boundary is not None:
            self._boundary += boundary.to(self._boundary.device)
        return pred

    @property
    def confusion(self) -> torch.Tensor:
        """This process's matrix so far (rows = GT, cols = prediction); not summed over ranks."""
        return self._cm.clone()

    def _reduced(self) -> torch.Tensor:
        """Confusion matrix rows, then the boundary rows if any, summed over ranks in one ``all_reduce``."""
        counts = self._cm if self._boundary is None else torch.cat([self._cm, self._boundary])
        counts = counts.clone()
        if dist.is_available() and dist.is_initialized():
            if dist.get_backend() == "nccl" and counts.device.type != "cuda":
                counts = counts.cuda()  # NCCL only reduces CUDA tensors
            dist.all_reduce(counts, op=dist.ReduceOp.SUM)
        return counts

    def evaluate(self) -> dict:
        """Metrics of the whole split; under DDP every rank must call it and every rank gets the same dict.

        The summed confusion matrix behind the numbers is kept as ``last_confusion`` (CPU, rows = GT) for
        plots, so they need no second collective call.
        """
        counts = self._reduced()
        cm = counts[: self.num_classes]
        self.last_confusion = cm.cpu()
        metrics = metrics_from_confusion(cm, self.class_names)
        if self._boundary is not None:
            metrics.update(boundary_iou_from_counts(counts[self.num_classes :], self.class_names))
        return metrics
