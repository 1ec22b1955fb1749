"""What every loss shares: input checks, float32 log-probabilities, the pixel-loss (sum, normaliser) split.

A *pixel loss* is a weighted mean of per-pixel terms over valid pixels. Exposing the two halves of that mean
through ``terms`` lets a trainer accumulate numerators and denominators over micro-batches and divide once,
which reproduces the full-batch loss exactly; region losses (Dice, Lovasz) have no such split.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from segkit.errors import SegkitError

TINY = torch.finfo(torch.float32).tiny


@contextmanager
def serial_on_cpu(device: torch.device) -> Iterator[None]:
    """Run the enclosed CPU ops on one intra-op thread, restoring the previous count afterwards.

    For chains of small ops on ``(B, H, W)`` maps (boundary maps, the focal term). Each multi-threaded op
    ends in a barrier that waits for every thread, so when other processes (data-loader workers, other
    jobs) occupy the cores, every op waits for a scheduler time slice and such chains cost up to 10x more;
    on one thread they cost about the same on an idle machine and no more on a busy one.
    """
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def check_inputs(logits: torch.Tensor, target: torch.Tensor, where: str) -> None:
    """One-line errors for the shape mistakes that otherwise surface as broadcasting failures."""
    if logits.dim() != 4 or target.dim() != 3 or logits.shape[:1] + logits.shape[2:] != target.shape:
        raise SegkitError(f"{where}: expected logits (B, C, H, W) and target (B, H, W) of the same B, H, W, "
                          f"got {tuple(logits.shape)} and {tuple(target.shape)}; "
                          "resize the logits to the mask")
    if target.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise SegkitError(f"{where}: target must hold integer class indices, got dtype {target.dtype}")


def check_number(value: object, where: str, positive: bool = False) -> float:
    """``value`` as a float if it is a finite number >= 0 (> 0 if ``positive``), else a SegkitError."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not is_number or value < 0 or (positive and value == 0):
        raise SegkitError(f"{where} must be a number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def float_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """``log_softmax`` over classes in float32: finite for saturated logits and fp16/bf16 inputs."""
    return F.log_softmax(logits.float(), dim=1)


def class_weight_tensor(class_weights: Sequence[float] | None, where: str) -> torch.Tensor | None:
    """Validated float32 per-class weights (or None), to be registered as a non-persistent buffer."""
    if class_weights is None:
        return None
    try:
        weights = torch.tensor([float(w) for w in class_weights], dtype=torch.float32)
    except (TypeError, ValueError):
        weights = None
    if weights is None or len(weights) == 0 or (weights < 0).any() or not torch.isfinite(weights).all():
        raise SegkitError(f"{where}.class_weights must be a non-empty list of finite numbers >= 0, "
                          f"got {class_weights!r}")
    return weights


class PixelLoss(nn.Module, ABC):
    """``sum_i w_i l_i / sum_i w_i`` over valid pixels ``i``; subclasses define ``l_i``, may refine ``w_i``.

    The default weight is the class weight of the pixel's label (1 without class weights) and 0 on
    ``ignore_index`` pixels. There ``nll_loss`` gives 0 with zero gradient whatever the logits, so every
    term built from it is finite and contributes exactly nothing.
    """

    def __init__(self, ignore_index: int = 255, class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("class_weights", class_weight_tensor(class_weights, type(self).__name__),
                             persistent=False)

    @abstractmethod
    def pixel_losses(self, log_probs: torch.Tensor, nll: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` unweighted per-pixel losses, finite everywhere (ignored pixels included).

        ``log_probs`` are the float32 log-probabilities ``(B, C, H, W)``; ``nll`` is ``-log p_t`` of the
        true class, 0 on ignored pixels.
        """

    def pixel_weights(self, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` float32 weights, 0 on ignored pixels; ``target`` may hold anything there."""
        if self.class_weights is None:
            return valid.float()
        return self.class_weights[target.masked_fill(~valid, 0)] * valid

    def terms(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of weighted per-pixel losses, sum of weights over valid pixels), both float32 scalars."""
        name = type(self).__name__
        check_inputs(logits, target, name)
        if self.class_weights is not None and len(self.class_weights) != logits.shape[1]:
            raise SegkitError(f"{name}.class_weights has {len(self.class_weights)} entries but the logits "
                              f"have {logits.shape[1]} classes; give one weight per class")
        target = target.long()
        log_probs = float_log_probs(logits)
        nll = F.nll_loss(log_probs, target, ignore_index=self.ignore_index, reduction="none")
        losses = self.pixel_losses(log_probs, nll)
        weights = self.pixel_weights(target, target != self.ignore_index)
        return (losses * weights).sum(), weights.sum()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total, normaliser = self.terms(logits, target)
        return total / normaliser.clamp(min=TINY)
