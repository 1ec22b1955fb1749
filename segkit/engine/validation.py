"""Validation: one pass over an evaluation loader into a dataset-level confusion matrix, and its hook."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from segkit.data.batch import DeviceBatcher
from segkit.engine.dist import average_buffers
from segkit.engine.hooks import Hook
from segkit.engine.precision import Amp, autocast
from segkit.engine.work_dir import append_metrics
from segkit.evaluation.evaluator import SegEvaluator
from segkit.evaluation.report import format_table
from segkit.visualization.collector import PanelCollector
from segkit.visualization.tensorboard import hparams_from_config, log_figures, log_hparams, log_metrics, log_panels

if TYPE_CHECKING:
    from segkit.engine.trainer import Trainer

# Called with the loader's batch dict, the model's logits, their argmax and the int64 target of every batch.
BatchObserver = Callable[[Mapping[str, Any], torch.Tensor, torch.Tensor, torch.Tensor], None]


@torch.no_grad()
def run_validation(model: nn.Module, loader: DataLoader, evaluator: SegEvaluator, batcher: DeviceBatcher,
                   amp: Amp = False, progress: bool = True, on_batch: BatchObserver | None = None) -> dict:
    """Metrics of ``model`` on every image of ``loader``; restores the model's train/eval mode afterwards.

    ``amp`` is the ``train.amp`` value. ``on_batch`` sees each batch's logits right after the evaluator did,
    so pictures cost no second forward. cuDNN's autotuner is off for the pass: validation images come in
    many sizes, and each new shape would be benchmarked again; training's setting is restored afterwards.
    """
    was_training, tuned = model.training, torch.backends.cudnn.benchmark
    model.eval()
    evaluator.reset()
    torch.backends.cudnn.benchmark = False
    try:
        for batch in tqdm(loader, desc="val", leave=False, disable=not progress, dynamic_ncols=True):
            images = batcher.images(batch)
            with autocast(batcher.device, amp):
                logits = model(images)
            masks = batcher.masks(batch)
            pred = evaluator.process(logits, masks)
            if on_batch is not None:
                on_batch(batch, logits, pred, masks)
    finally:
        model.train(was_training)
        torch.backends.cudnn.benchmark = tuned
    return evaluator.evaluate()


class ValidationHook(Hook):
    """Dataset-level metrics every ``interval`` epochs and after the last: metrics.jsonl, TensorBoard, log.

    Validates ``trainer.eval_model`` (the EMA weights when enabled). TensorBoard gets the scalars, the
    confusion-matrix and per-class IoU figures and, with ``panels``, the sample panels (fixed class-covering
    set + ``worst_k`` worst images) and one TP/FP/FN panel per class over up to ``class_images`` images
    (see :mod:`segkit.visualization.collector`). When training ends (last epoch or early stop), with
    ``hparams``, the run's hyper-parameters and best mIoU go to the HParams tab.

    Under DDP every rank evaluates its shard into the shared confusion matrix; only rank 0 writes, and its
    panels show images of its own shard.
    """

    def __init__(self, interval: int, panels: bool = True, worst_k: int = 4, class_images: int = 3,
                 hparams: bool = True) -> None:
        self.interval = interval
        self.panels = panels
        self.worst_k = worst_k
        self.class_images = class_images
        self.hparams = hparams
        self.collector: PanelCollector | None = None  # made at the first validation, kept for its choices

    def after_epoch(self, trainer: Trainer) -> None:
        trainer.is_best = False
        if trainer.epoch % self.interval and trainer.epoch != trainer.max_epochs:
            return
        average_buffers(trainer.model)
        if trainer.eval_model is not trainer.model:
            average_buffers(trainer.eval_model)
        collector = self._collector(trainer)
        metrics = run_validation(trainer.eval_model, trainer.val_loader, trainer.evaluator, trainer.batcher,
                                 amp=trainer.amp, progress=trainer.progress and trainer.is_main,
                                 on_batch=collector.observe if collector else None)
        trainer.metrics_lines += 1
        if trainer.is_main:
            record = {"epoch": trainer.epoch, "iter": trainer.iter, **metrics}
            append_metrics(trainer.work_dir, record)
        trainer.logger.info("validation after epoch %d (iter %d):\n%s", trainer.epoch, trainer.iter,
                            format_table(metrics))
        miou = metrics["mIoU"] if metrics["mIoU"] is not None else -math.inf
        if miou > trainer.best["mIoU"]:
            trainer.best = {"mIoU": miou, "epoch": trainer.epoch, "iter": trainer.iter, "IoU": metrics["IoU"]}
            trainer.is_best = True
        trainer.last_metrics = metrics
        if trainer.writer is not None:
            self._to_tensorboard(trainer, metrics, collector)

    def after_train(self, trainer: Trainer) -> None:
        if self.hparams and trainer.writer is not None and math.isfinite(trainer.best["mIoU"]):
            log_hparams(trainer.writer, hparams_from_config(trainer.cfg.to_dict()),
                        {"hparams/best_mIoU": trainer.best["mIoU"], "hparams/best_epoch": trainer.best["epoch"]},
                        trainer.iter)
            trainer.writer.flush()

    def _collector(self, trainer: Trainer) -> PanelCollector | None:
        if not self.panels or not trainer.is_main:
            return None
        if self.collector is None:
            self.collector = PanelCollector(trainer.classes, trainer.evaluator.ignore_index, self.worst_k,
                                            self.class_images)
        return self.collector

    @staticmethod
    def _to_tensorboard(trainer: Trainer, metrics: dict, collector: PanelCollector | None) -> None:
        writer, step = trainer.writer, trainer.iter
        log_metrics(writer, metrics, step)
        log_figures(writer, trainer.evaluator.last_confusion, metrics, step,
                    caption=f"epoch {trainer.epoch}, iter {trainer.iter}")
        if collector is not None:
            log_panels(writer, collector.finish(), step)
        writer.flush()
