"""The one prediction path: models + TTA + windows -> merged class probabilities at the original size.

``tools/test.py`` (metrics), ``tools/infer_tta.py`` (submissions, masks) and pseudo-labelling all call
:class:`Predictor`, so an evaluated number and a submitted mask come from the same code. Per model, the
views of :class:`~segkit.inference.tta.TTASpec` are averaged in its merge space (probabilities, or logits
under ``merge="logit"``); the models' probabilities are then averaged with their weights (an ensemble is
always merged in probability space: models' logit scales are not comparable).

Labels are the argmax of what was averaged last: with one model and one view that is the logits
themselves (softmax can round two different logits to one probability, and evaluation during training takes
the argmax of the logits, so ``tools/test.py`` reproduces its numbers exactly); otherwise the averaged
logits (``merge="logit"``, one model) or the averaged probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segkit.data.batch import DeviceBatcher
from segkit.engine.precision import autocast
from segkit.inference.batching import batched_apply
from segkit.inference.tta import TTASpec, View
from segkit.inference.window import SlidingWindow

K = TypeVar("K")
# Inputs per forward when the caller does not say: a GPU gains from large batches; a CPU does not (measured in
# docs/benchmarks.md: 16 inputs of 256 px cost ~1.3x per image what 2 do, and 2 cost what 1 does).
DEFAULT_BATCH = {"cuda": 8, "cpu": 2}
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def default_batch_size(device: torch.device | str) -> int:
    return DEFAULT_BATCH.get(torch.device(device).type, DEFAULT_BATCH["cpu"])


@dataclass
class Member:
    """One model of an ensemble, with the normalisation it was trained with and its ensemble weight."""

    model: nn.Module
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    weight: float = 1.0
    name: str = ""


@dataclass
class Prediction:
    """``probs``: float32 ``(B, C, H, W)`` (or ``(C, H, W)`` for one image), summing to 1 over classes;
    ``labels``: int64 ``(B, H, W)`` (or ``(H, W)``), the predicted class of every pixel. On the device."""

    probs: torch.Tensor
    labels: torch.Tensor


class Predictor:
    """Predict images of any size with one or more models, TTA views and optional sliding windows.

    ``batch_size`` is the most inputs (views x images, or windows) one forward takes; the views of a batch go
    through each model together (default: :data:`DEFAULT_BATCH` for the device). ``amp`` is ``train.amp``
    (autocast on the device). ``resize`` ``(H, W)``: every image is predicted resized to that size (bilinearly,
    then views and windows as usual) and the merged probabilities are resized back to the image's own size;
    labels are then their argmax. Nothing is kept between calls, so memory does not grow with the number of images.
    """

    def __init__(self, members: Sequence[Member], *, classes: Sequence[str] | None = None,
                 tta: TTASpec | None = None, window: SlidingWindow | None = None,
                 device: torch.device | str = "cpu", amp: object = False, batch_size: int | None = None,
                 resize: tuple[int, int] | None = None) -> None:
        if not members:
            raise ValueError("a Predictor needs at least one model")
        batch_size = default_batch_size(device) if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        total = sum(m.weight for m in members)
        if any(m.weight <= 0 for m in members) or not total > 0:
            raise ValueError(f"ensemble weights must be positive, got {[m.weight for m in members]}")
        # Images of many sizes: cudnn's autotuner would re-benchmark every new shape.
        torch.backends.cudnn.benchmark = False
        self.device = torch.device(device)
        self.members = list(members)
        for member in self.members:
            member.model.to(self.device).eval()
        self.weights = [m.weight / total for m in self.members]
        self.classes = list(classes) if classes is not None else None
        self.tta = tta or TTASpec()
        self.window = window
        self.amp = amp
        self.batch_size = batch_size
        self.resize = tuple(resize) if resize is not None else None
        self._batchers = {(tuple(m.mean), tuple(m.std)): DeviceBatcher(self.device, m.mean, m.std)
                          for m in self.members}

    @property
    def images_per_batch(self) -> int:
        """Same-size images :meth:`stream` predicts together: as many as fit with all their views."""
        return max(1, self.batch_size // self.tta.num_views)

    @torch.inference_mode()
    def predict_batch(self, images: torch.Tensor) -> Prediction:
        """``images``: uint8 ``(B, 3, H, W)`` RGB (any device) -> :class:`Prediction` at ``(H, W)``."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (B, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        size = tuple(images.shape[-2:])
        resized = self.resize is not None and self.resize != size
        normalised: dict[tuple, torch.Tensor] = {}
        probs = decision = None
        for member, weight in zip(self.members, self.weights):
            key = (tuple(member.mean), tuple(member.std))
            if key not in normalised:
                normalised[key] = self._batchers[key].images({"image": images})
                if resized:
                    normalised[key] = F.interpolate(normalised[key], size=self.resize, mode="bilinear",
                                                    align_corners=False)
            member_probs, decision = self._merged(member, normalised[key])
            probs = member_probs if len(self.members) == 1 else (
                weight * member_probs if probs is None else probs.add_(member_probs, alpha=weight))
        if len(self.members) > 1:
            decision = probs
        if resized:
            probs = decision = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
        return Prediction(probs, decision.max(dim=1).indices)

    def predict(self, image: np.ndarray | torch.Tensor) -> Prediction:
        """One uint8 image, ``(H, W, 3)`` numpy (as decoded, RGB) or ``(3, H, W)`` tensor."""
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        pred = self.predict_batch(image[None])
        return Prediction(pred.probs[0], pred.labels[0])

    def stream(self, images: Iterable[tuple[K, torch.Tensor]]) -> Iterator[tuple[K, Prediction]]:
        """``(key, uint8 (3, H, W))`` pairs in, ``(key, Prediction of that image)`` out, in the same order.

        Consecutive images of one size are batched (:attr:`images_per_batch`); an image's result is yielded
        before the next batch is read, so only one batch is ever held.
        """
        pending: list[tuple[K, torch.Tensor]] = []
        for key, image in images:
            if pending and image.shape != pending[0][1].shape:
                yield from self._flush(pending)
            pending.append((key, image))
            if len(pending) == self.images_per_batch:
                yield from self._flush(pending)
        yield from self._flush(pending)

    def _flush(self, pending: list[tuple[K, torch.Tensor]]) -> Iterator[tuple[K, Prediction]]:
        if not pending:
            return
        pred = self.predict_batch(torch.stack([image for _, image in pending]))
        keys = [key for key, _ in pending]
        pending.clear()
        for i, key in enumerate(keys):
            yield key, Prediction(pred.probs[i], pred.labels[i])

    def _logits(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.amp):
            out = model(images)
        if isinstance(out, dict):
            out = out["out"]
        return out.float()

    def _merged(self, member: Member, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One model's merged probabilities and the scores its labels are the argmax of."""
        height, width = images.shape[-2:]
        views = self.tta.views(height, width)
        # One unscaled view of the whole image: the softmax of its logits is all there is, so keep the logits
        # (their argmax is exact). Otherwise, under merge="prob", every output (a whole view or a window) is
        # turned into probabilities at the size the model saw, before any resize: one order for both paths.
        in_logits = self.tta.merge == "logit" or (len(views) == 1 and views[0].size is None and self.window is None)
        window = self.window

        def scores(inputs: torch.Tensor) -> torch.Tensor:
            if window is None:
                return self._logits(member.model, inputs)
            return window.scores(lambda crops: self._logits(member.model, crops), inputs,
                                 probabilities=not in_logits, batch_size=self.batch_size)

        total = _sum_over_views(images, views, scores, softmax=not in_logits and window is None,
                                batch_size=self.batch_size)
        mean = total if len(views) == 1 else total.div_(len(views))
        return (torch.softmax(mean, dim=1), mean) if in_logits else (mean, mean)


def _sum_over_views(images: torch.Tensor, views: list[View], scores: Callable[[torch.Tensor], torch.Tensor],
                    softmax: bool, batch_size: int) -> torch.Tensor:
    """Sum over ``views`` of ``undo(scores(augment(images)))``, views of one shape batched; with ``softmax`` the
    scores become probabilities before ``undo`` resizes them (as each window's do on the sliding-window path)."""
    height, width = images.shape[-2:]
    total: torch.Tensor | None = None
    by_shape: dict[tuple[int, int], list[View]] = {}
    for view in views:
        by_shape.setdefault(view.input_shape(height, width), []).append(view)

    def add(view: View, i0: int, i1: int, out: torch.Tensor) -> None:
        nonlocal total
        if softmax:
            out = torch.softmax(out, dim=1)
        out = view.undo(out, height, width)
        if total is None:
            total = out.new_zeros(images.shape[0], *out.shape[1:])
        total[i0:i1] += out

    for group in by_shape.values():
        batched_apply(group, images.shape[0], batch_size, lambda view, i0, i1: view.augment(images[i0:i1]),
                      scores, add)
    return total
