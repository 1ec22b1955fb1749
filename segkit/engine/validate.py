"""One pass over an evaluation loader into a dataset-level confusion matrix."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from segkit.data.batch import DeviceBatcher
from segkit.engine.precision import autocast
from segkit.evaluation.evaluator import SegEvaluator


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
