"""Out-of-fold evaluation of a k-fold run: each labelled image predicted by the one fold model that never
trained on it, all of them counted in one confusion matrix.

The mean of the folds' own mIoU is not the OOF mIoU: a class rare in one fold weighs as much there as a
common one elsewhere. One matrix over every held-out image is the dataset-level number (the same contract as
validation), and the folds' spread says how much a single split could have misled. Predictions go through
the inference ``Predictor`` (what ``infer_tta.py`` submits), are saved as index PNGs under
``oof/fold<k>/`` and summarised in ``oof/oof.json``.

By default each fold predicts with its ``best.pth``, which was chosen by mIoU on that same held-out fold: a
selection on the scored images, so the number leans optimistic (more so with many validations and a noisy
curve). ``checkpoint="last"`` scores the final weights instead, which saw no choice made on the held-out images.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from segkit.config import Config
from segkit.data.loader import build_dataloader, build_dataset
from segkit.engine.validation import BatchObserver
from segkit.errors import SegkitError
from segkit.evaluation.evaluator import SegEvaluator
from segkit.experiments.kfold_training import FoldPlan, fold_config
from segkit.inference.checkpoints import load_predictor
from segkit.inference.evaluate import evaluate
from segkit.inference.sources import InputImage
from segkit.inference.tta import TTASpec
from segkit.inference.writers import MaskWriter
from segkit.paths import atomic_file

OOF_DIR = "oof"
OOF_RECORD = "oof.json"
OOF_CHECKPOINTS = ("best", "last")


def out_of_fold(cfg: Config, plan: FoldPlan, device: torch.device, tta: TTASpec | None = None,
                progress: bool = True, checkpoint: str = "best") -> dict[str, Any]:
    """Predict every fold's held-out images with its ``<checkpoint>.pth`` (``best`` or ``last``); metrics over
    all of them and per fold."""
    out = plan.root / OOF_DIR
    overall: SegEvaluator | None = None
    folds = []
    for k in range(plan.folds):
        fold = fold_config(cfg, plan, k)
        fold.data.train.copy_paste = None
        dataset = build_dataset(fold, "val")
        if overall is None:
            overall = SegEvaluator(len(dataset.classes), dataset.classes, fold.data.ignore_index, device)
        elif dataset.classes != overall.class_names:
            raise SegkitError(f"{dataset.ann_file}: classes {dataset.classes} differ from fold 0's "
                              f"{overall.class_names}; the folds must come from one split")
        weights = plan.fold_dir(k) / "checkpoints" / f"{checkpoint}.pth"
        predictor = load_predictor([weights], fold, tta=tta, device=device, expected_classes=dataset.classes,
                                   expected_from=str(dataset.ann_file))
        loader = build_dataloader(fold, "val", dataset, device=device)
        own = SegEvaluator(len(dataset.classes), dataset.classes, fold.data.ignore_index, device)
        metrics = evaluate(predictor, loader, own, progress=progress,
                           on_batch=_count_and_save(overall, MaskWriter(out / f"fold{k}")))
        folds.append({"fold": k, "images": len(dataset), "mIoU": metrics["mIoU"], "IoU": metrics["IoU"],
                      "val_best_mIoU": _best_val_mIoU(plan.fold_dir(k))})
    oof = overall.evaluate()
    scores = [f["mIoU"] for f in folds if f["mIoU"] is not None]
    record = {
        "oof": {**oof, "confusion_matrix": overall.last_confusion.tolist()},
        "folds": folds,
        "spread": {"mean": statistics.fmean(scores), "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                   "min": min(scores), "max": max(scores)} if scores else None,
        "tta": (tta or TTASpec()).mode,
        "checkpoint": checkpoint,
        "predictions": {f"fold{k}": str(out / f"fold{k}") for k in range(plan.folds)},
    }
    with atomic_file(out / OOF_RECORD) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    return record


def _count_and_save(overall: SegEvaluator, writer: MaskWriter) -> BatchObserver:
    """Each held-out batch also goes into the matrix over all folds, and its labels to index PNGs."""

    def observe(batch: Mapping[str, Any], _log_probs: torch.Tensor, labels: torch.Tensor,
                target: torch.Tensor) -> None:
        overall.process(labels, target)
        for i, name in enumerate(batch["file_name"]):
            pred = labels[i].to(torch.uint8).cpu().numpy()
            writer.write(InputImage(name, Path(name), int(batch["image_id"][i]), *pred.shape), pred)

    return observe


def _best_val_mIoU(run: Path) -> float | None:
    summary = run / "summary.json"
    return json.loads(summary.read_text(encoding="utf-8")).get("best_mIoU") if summary.is_file() else None
