"""Metrics of a :class:`Predictor` on a labelled loader: what ``tools/test.py`` reports.

The same loop as training's ``run_validation`` but through the Predictor (TTA, ensembles, windows), so a
tested number and a submitted mask come from one code path. With one checkpoint and no TTA the labels are
the argmax of the very logits ``run_validation`` sees, so the numbers equal ``metrics.jsonl`` exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from segkit.evaluation.evaluator import SegEvaluator
from segkit.inference.predictor import Predictor

if TYPE_CHECKING:
    from segkit.engine.validation import BatchObserver


def evaluate(predictor: Predictor, loader: DataLoader, evaluator: SegEvaluator, progress: bool = True,
             on_batch: BatchObserver | None = None) -> dict[str, Any]:
    """Dataset-level metrics; ``on_batch(batch, log_probs, labels, target)`` sees every batch (for panels)."""
    evaluator.reset()
    for batch in tqdm(loader, desc="test", leave=False, disable=not progress, dynamic_ncols=True):
        pred = predictor.predict_batch(batch["image"])
        target = batch["mask"].to(predictor.device, non_blocking=True).long()
        evaluator.process(pred.labels, target)
        if on_batch is not None:
            # log p is a drop-in for logits: its softmax is p again (the panels' confidence map).
            on_batch(batch, pred.probs.clamp_min(torch.finfo(torch.float32).tiny).log(), pred.labels, target)
    return evaluator.evaluate()

