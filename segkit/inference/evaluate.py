"""Metrics of a :class:`Predictor` on a labelled loader: what ``tools/test.py`` reports.

The same loop as training's ``run_validation`` but through the Predictor (TTA, ensembles, windows), so a
tested number and a submitted mask come from one code path. With one checkpoint and no TTA the labels are
the argmax of the very logits ``run_validation`` sees, so the numbers equal ``metrics.jsonl`` exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from segkit.config import Config
from segkit.evaluation.evaluator import SegEvaluator
from segkit.inference.predictor import Predictor
from segkit.inference.tta import TTASpec
from segkit.inference.window import SlidingWindow

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


@dataclass
class Evaluation:
    """What :func:`evaluate` needs for checkpoints on a labelled split (``tools/test.py``, sweeps' ``--eval-tta``)."""

    dataset: Dataset
    loader: DataLoader
    predictor: Predictor
    evaluator: SegEvaluator


def prepare_evaluation(cfg: Config, checkpoints: Sequence[str | Path], split: str = "val",
                       tta: TTASpec | None = None, window: SlidingWindow | None = None,
                       weights: Sequence[float] | None = None, batch_size: int | None = None,
                       resize: tuple[int, int] | None = None, boundary_iou: bool = False) -> Evaluation:
    """The split without augmentation, the ensemble of ``checkpoints``, its Predictor and an evaluator.

    Every split is evaluated as ``infer_tta`` predicts: each image at its own size, no augmentation (val and
    test pipelines are ``[]`` by the schema); a fixed size is the Predictor's ``resize`` (``test.resize``).
    """
    from segkit.data.loader import build_dataloader, build_dataset
    from segkit.engine.dist import resolve_device
    from segkit.inference.checkpoints import load_ensemble, predictor_for

    device = resolve_device(cfg.train.device)
    cfg.data.train.pipeline = []
    cfg.data.train.copy_paste = None
    if split == "test":
        _check_labelled(Path(cfg.data.root) / cfg.data.test.ann)
    dataset = build_dataset(cfg, split, labelled=True)
    ensemble = load_ensemble(checkpoints, cfg, weights, expected_classes=dataset.classes,
                             expected_from=str(dataset.ann_file))
    loader = build_dataloader(cfg, "val", dataset, device=device)
    # By default one forward per loader batch and view (all views at once on CUDA): with one view, exactly the
    # batches training validated.
    spec = tta or TTASpec()
    views = spec.num_views if device.type == "cuda" else 1
    predictor = predictor_for(ensemble, tta=spec, window=window, device=device,
                              batch_size=batch_size if batch_size is not None else loader.batch_size * views,
                              resize=resize)
    evaluator = SegEvaluator(len(dataset.classes), dataset.classes, cfg.data.ignore_index, device,
                             boundary_iou=boundary_iou, boundary_dilation=cfg.evaluation.boundary_dilation)
    return Evaluation(dataset, loader, predictor, evaluator)


def _check_labelled(ann: Path) -> None:
    """``--split test`` evaluates a labelled test json; the usual unlabelled one is predicted, not evaluated."""
    from segkit.data.json_file import read_json_object
    from segkit.errors import SegkitError

    if ann.is_file() and not isinstance(read_json_object(ann).get("annotations"), list):
        raise SegkitError(f"--split test: data.test.ann {ann} has no 'annotations' list, so there is nothing to "
                          "evaluate against; predict it with tools/infer_tta.py, or point data.test.ann at a "
                          "labelled json")
