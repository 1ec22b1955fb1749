"""Validation-time metric accumulation: reset / process each batch / evaluate once per split.

Only a ``(C, C)`` int64 confusion matrix is kept, on the model's device, so evaluating a split costs one
``bincount`` per batch and, under DDP, one ``all_reduce`` of ``C * C`` integers at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist

from segkit.evaluation.metrics import MetricInputError, confusion_matrix, metrics_from_confusion


class SegEvaluator:
    """Accumulates one confusion matrix over a whole split; see :mod:`segkit.evaluation.metrics`."""

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str],
        ignore_index: int = 255,
        device: torch.device | str = "cpu",
    ) -> None:
        if len(class_names) != num_classes:
            raise MetricInputError(
                f"num_classes is {num_classes} but {len(class_names)} class names were given; "
                "give one name per class"
            )
        self.num_classes = num_classes
        self.class_names = list(class_names)
        self.ignore_index = ignore_index
        self._cm = torch.zeros((num_classes, num_classes), dtype=torch.int64, device=device)

    def reset(self) -> None:
        self._cm.zero_()

    @torch.no_grad()
    def process(self, logits_or_pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch: logits ``(B, C, H, W)`` (argmax taken here) or class indices ``(B, H, W)``."""
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
            pred = pred.argmax(dim=1)
        cm = confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        self._cm += cm.to(self._cm.device)

    @property
    def confusion(self) -> torch.Tensor:
        """This process's matrix so far (rows = GT, cols = prediction); not summed over ranks."""
        return self._cm.clone()

    def reduced_confusion(self) -> torch.Tensor:
        """The matrix summed over all ranks when torch.distributed is initialised (a collective call)."""
        cm = self._cm.clone()
        if dist.is_available() and dist.is_initialized():
            if dist.get_backend() == "nccl" and cm.device.type != "cuda":
                cm = cm.cuda()  # NCCL only reduces CUDA tensors
            dist.all_reduce(cm, op=dist.ReduceOp.SUM)
        return cm

    def evaluate(self) -> dict:
        """Metrics of the whole split; under DDP every rank must call it and every rank gets the same dict."""
        return metrics_from_confusion(self.reduced_confusion(), self.class_names)
