"""What one validation writes to TensorBoard: scalars, the two split-level figures, panels, and hparams.

Tags (the contract in DESIGN.md, extended): ``val/<mean>`` (mIoU, mAcc, aAcc, mDice, fwIoU, mBoundaryIoU),
``val/<group>/<class>`` (IoU, Acc, Precision, Dice, BoundaryIoU), ``val/confusion_matrix``,
``val/per_class_iou``, ``val/samples/fixed/<file>``, ``val/samples/worst/<rank>``, ``val/class/<class>``,
and ``hparams/best_mIoU`` with the run's hyper-parameters for the HParams tab.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from segkit.evaluation.report import MEANS
from segkit.visualization.figures import confusion_figure, iou_bar_figure

GROUPS = ("IoU", "Acc", "Precision", "Dice", "BoundaryIoU")
# Config sections whose every scalar is a hyper-parameter; other sections contribute the keys listed.
HPARAM_SECTIONS = ("model", "loss", "optimizer", "scheduler")
HPARAM_KEYS = ("data.batch_size", "train.epochs", "train.seed", "train.amp", "train.grad_clip")


def log_metrics(writer: SummaryWriter, metrics: Mapping[str, Any], step: int, prefix: str = "val") -> None:
    """Means as ``val/<name>``, per-class values as ``val/<group>/<class>``; absent (None) values are skipped."""
    for name in MEANS:
        if metrics.get(name) is not None:
            writer.add_scalar(f"{prefix}/{name}", metrics[name], step)
    for group in GROUPS:
        for class_name, value in metrics.get(group, {}).items():
            if value is not None:
                writer.add_scalar(f"{prefix}/{group}/{class_name}", value, step)


def log_figures(writer: SummaryWriter, cm: torch.Tensor, metrics: Mapping[str, Any], step: int,
                caption: str = "", prefix: str = "val") -> None:
    """The row-normalised confusion matrix and the per-class IoU bars (``add_figure`` closes them)."""
    names = list(metrics["IoU"])
    suffix = f" - {caption}" if caption else ""
    writer.add_figure(f"{prefix}/confusion_matrix",
                      confusion_figure(cm, names, title=f"confusion matrix (row-normalised){suffix}"), step)
    writer.add_figure(f"{prefix}/per_class_iou",
                      iou_bar_figure(metrics["IoU"], metrics.get("mIoU"), title=f"per-class IoU{suffix}"), step)


def log_panels(writer: SummaryWriter, panels: Iterable[tuple[str, np.ndarray]], step: int) -> None:
    for tag, picture in panels:
        writer.add_image(tag, picture, step, dataformats="HWC")


def hparams_from_config(cfg: Mapping[str, Any]) -> dict[str, str | float | int]:
    """Flat ``section.key`` hyper-parameters of a resolved config, in types the HParams tab can show.

    Lists/tuples and None become strings; the training augmentations become one string of their type names,
    since they are what is most often compared.
    """
    flat: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, Mapping):
            for sub, item in value.items():
                walk(item, f"{key}.{sub}")
        else:
            flat[key] = value

    for section in HPARAM_SECTIONS:
        walk(cfg.get(section, {}), section)
    for dotted in HPARAM_KEYS:
        head, _, tail = dotted.partition(".")
        if tail in cfg.get(head, {}):
            flat[dotted] = cfg[head][tail]
    pipeline = cfg.get("data", {}).get("train", {}).get("pipeline") or []
    flat["data.train.pipeline"] = ",".join(str(step.get("type", "?")) for step in pipeline) or "none"
    return {key: _hparam_value(value) for key, value in flat.items()}


def _hparam_value(value: Any) -> str | float | int:
    if isinstance(value, bool) or value is None or isinstance(value, (list, tuple, dict)):
        return str(value)
    return value if isinstance(value, (int, float, str)) else str(value)


def log_hparams(writer: SummaryWriter, hparams: Mapping[str, Any], metrics: Mapping[str, float], step: int) -> None:
    """Hyper-parameters and their result metrics into the writer's own run directory.

    ``SummaryWriter.add_hparams`` would open a new sub-run per call; writing the session records into the
    run itself keeps one row per work dir in the HParams tab, next to that run's curves. No experiment
    record is written, so TensorBoard builds the columns from all runs' hyper-parameters, which may differ.
    """
    _, start, end = hparams_summaries(dict(hparams), dict(metrics))
    file_writer = writer.file_writer
    file_writer.add_summary(start, step)
    file_writer.add_summary(end, step)
    for tag, value in metrics.items():
        writer.add_scalar(tag, value, step)
