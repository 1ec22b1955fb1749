"""Validation: one pass over an evaluation loader into a dataset-level confusion matrix, and its hook."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from segkit.data.batch import DeviceBatcher
from segkit.engine.hooks import Hook
from segkit.engine.precision import autocast
from segkit.evaluation.evaluator import SegEvaluator
from segkit.evaluation.report import format_table

if TYPE_CHECKING:
    from segkit.engine.trainer import Trainer


@torch.no_grad()
def run_validation(model: nn.Module, loader: DataLoader, evaluator: SegEvaluator, batcher: DeviceBatcher,
                   amp: bool = False, progress: bool = True) -> dict:
    """Metrics of ``model`` on every image of ``loader``; restores the model's train/eval mode afterwards."""
    was_training = model.training
    model.eval()
    evaluator.reset()
    try:
        for batch in tqdm(loader, desc="val", leave=False, disable=not progress, dynamic_ncols=True):
            images = batcher.images(batch)
            with autocast(batcher.device, amp):
                logits = model(images)
            evaluator.process(logits, batcher.masks(batch))
    finally:
        model.train(was_training)
    return evaluator.evaluate()


class ValidationHook(Hook):
    """Dataset-level metrics every ``interval`` epochs and after the last: metrics.jsonl, TensorBoard, log."""

    def __init__(self, interval: int) -> None:
        self.interval = interval

    def after_epoch(self, trainer: Trainer) -> None:
        trainer.is_best = False
        if trainer.epoch % self.interval and trainer.epoch != trainer.max_epochs:
            return
        metrics = run_validation(trainer.model, trainer.val_loader, trainer.evaluator, trainer.batcher,
                                 amp=trainer.amp, progress=trainer.progress)
        record = {"epoch": trainer.epoch, "iter": trainer.iter, **metrics}
        with open(trainer.work_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        self._to_tensorboard(trainer, metrics)
        trainer.logger.info("validation after epoch %d (iter %d):\n%s", trainer.epoch, trainer.iter,
                            format_table(metrics))
        miou = metrics["mIoU"] if metrics["mIoU"] is not None else -math.inf
        if miou > trainer.best["mIoU"]:
            trainer.best = {"mIoU": miou, "epoch": trainer.epoch, "iter": trainer.iter}
            trainer.is_best = True
        trainer.last_metrics = metrics

    @staticmethod
    def _to_tensorboard(trainer: Trainer, metrics: dict) -> None:
        step = trainer.iter
        for name in ("mIoU", "mAcc", "aAcc"):
            if metrics[name] is not None:
                trainer.writer.add_scalar(f"val/{name}", metrics[name], step)
        for group in ("IoU", "Acc"):
            for class_name, value in metrics[group].items():
                if value is not None:
                    trainer.writer.add_scalar(f"val/{group}/{class_name}", value, step)
        trainer.writer.flush()
