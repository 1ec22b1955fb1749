"""Optimizers (torch's and timm's factory) and per-iteration LR schedules with linear warmup.

Every schedule is a ``LambdaLR`` whose multiplier is a small callable object: ``LambdaLR.state_dict`` saves such
an object's attributes, so schedules with state (plateau reductions) resume exactly. Multipliers scale each
parameter group's own initial LR, which keeps an encoder LR multiplier intact.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from segkit.errors import SegkitError
from segkit.registry import OPTIMIZERS, SCHEDULERS, closest

for _optimizer in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RAdam):
    OPTIMIZERS.register()(_optimizer)


@OPTIMIZERS.register()
def Timm(params: Iterable[Any], opt: str, lr: float, weight_decay: float = 0.0, **kwargs: Any) -> torch.optim.Optimizer:
    """Any optimizer of timm's factory by name: ``dict(type="Timm", opt="lookahead_adamp", lr=1e-3)``."""
    import timm.optim

    names = timm.optim.list_optimizers()
    base = opt.lower().removeprefix("lookahead_")
    if base not in names:
        raise SegkitError(f"optimizer.opt={opt!r} is not a timm optimizer{closest(base, names)} "
                          "(prefix 'lookahead_' to wrap one in Lookahead)")
    return timm.optim.create_optimizer_v2(list(params), opt=opt, lr=lr, weight_decay=weight_decay, **kwargs)


def build_optimizer(cfg: Mapping[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    """Trainable parameters only; ``encoder_lr_mult`` gives the encoder its own LR (transfer learning).

    On CUDA, torch's SGD, Adam and AdamW are built ``fused=True`` unless the config sets ``fused`` or
    ``foreach``: one kernel per step, and a fused optimizer takes the fp16 GradScaler's inf check on the device
    (others make ``GradScaler.step`` read it back, a sync per step).
    """
    cfg = dict(cfg)
    defaults: dict[str, Any] = {}
    if (any(p.is_cuda for p in model.parameters()) and cfg.get("type") in OPTIMIZERS
            and "fused" in inspect.signature(OPTIMIZERS.get(cfg["type"])).parameters
            and not {"fused", "foreach"} & cfg.keys()):
        defaults["fused"] = True
    mult = cfg.pop("encoder_lr_mult", None)
    if mult is None or mult == 1:
        params: list[Any] = [p for p in model.parameters() if p.requires_grad]
    else:
        from segkit.models.parts import decoder_parameters, encoder_parameters

        if "lr" not in cfg:
            raise SegkitError("optimizer.encoder_lr_mult needs optimizer.lr to be set")
        params = [
            {"params": [p for p in encoder_parameters(model) if p.requires_grad], "lr": cfg["lr"] * mult},
            {"params": [p for p in decoder_parameters(model) if p.requires_grad]},
        ]
        params = [group for group in params if group["params"]]
    return OPTIMIZERS.build(cfg, where="optimizer", params=params, **defaults)


class Multiplier:
    """Linear warmup from 1/warmup_iters to 1, then ``decay(progress in [0, 1])``."""

    def __init__(self, total_iters: int, warmup_iters: int) -> None:
        if warmup_iters < 0:
            raise SegkitError(f"scheduler.warmup_iters={warmup_iters} must be >= 0")
        self.total_iters = total_iters
        self.warmup_iters = warmup_iters

    def __call__(self, step: int) -> float:
        if step < self.warmup_iters:
            return (step + 1) / self.warmup_iters
        span = max(1, self.total_iters - self.warmup_iters)
        return self.decay(min(1.0, (step - self.warmup_iters) / span), step - self.warmup_iters)

    def decay(self, progress: float, step: int) -> float:
        return 1.0


class _Cosine(Multiplier):
    def __init__(self, total_iters: int, warmup_iters: int, min_lr_ratio: float) -> None:
        super().__init__(total_iters, warmup_iters)
        self.min_lr_ratio = min_lr_ratio

    def decay(self, progress: float, step: int) -> float:
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class _CosineRestarts(Multiplier):
    def __init__(self, total_iters: int, warmup_iters: int, period: int, period_mult: float,
                 min_lr_ratio: float) -> None:
        super().__init__(total_iters, warmup_iters)
        self.period, self.period_mult, self.min_lr_ratio = period, period_mult, min_lr_ratio

    def decay(self, progress: float, step: int) -> float:
        period = self.period
        while step >= period:
            step -= period
            period = max(1, round(period * self.period_mult))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * step / period))


class _Poly(Multiplier):
    def __init__(self, total_iters: int, warmup_iters: int, power: float, min_lr_ratio: float) -> None:
        super().__init__(total_iters, warmup_iters)
        self.power, self.min_lr_ratio = power, min_lr_ratio

    def decay(self, progress: float, step: int) -> float:
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * (1 - progress) ** self.power


class _Step(Multiplier):
    def __init__(self, total_iters: int, warmup_iters: int, milestone_iters: Sequence[int], gamma: float) -> None:
        super().__init__(total_iters, warmup_iters)
        self.milestone_iters, self.gamma = list(milestone_iters), gamma

    def __call__(self, step: int) -> float:
        warm = super().__call__(step)
        return warm * self.gamma ** sum(step >= m for m in self.milestone_iters)


class _OneCycle(Multiplier):
    """Warmup from 1/div_factor to 1, then cosine down to 1/(div_factor * final_div_factor)."""

    def __init__(self, total_iters: int, warmup_iters: int, div_factor: float, final_div_factor: float) -> None:
        super().__init__(total_iters, warmup_iters)
        self.start, self.end = 1 / div_factor, 1 / (div_factor * final_div_factor)

    def __call__(self, step: int) -> float:
        if step < self.warmup_iters:
            return self.start + (1 - self.start) * step / self.warmup_iters
        return super().__call__(step)

    def decay(self, progress: float, step: int) -> float:
        return self.end + (1 - self.end) * 0.5 * (1 + math.cos(math.pi * progress))


class _Plateau(Multiplier):
    """Multiplies the LR by ``factor`` once the validation metric has not improved for ``patience`` reports in a row."""

    def __init__(self, total_iters: int, warmup_iters: int, factor: float, patience: int, min_lr_ratio: float,
                 threshold: float) -> None:
        super().__init__(total_iters, warmup_iters)
        self.factor, self.patience, self.min_lr_ratio, self.threshold = factor, patience, min_lr_ratio, threshold
        self.scale = 1.0
        self.best = -math.inf
        self.bad_reports = 0

    def decay(self, progress: float, step: int) -> float:
        return self.scale

    def report(self, value: float) -> None:
        if value > self.best + self.threshold:
            self.best, self.bad_reports = value, 0
            return
        self.bad_reports += 1
        if self.bad_reports >= self.patience:
            self.scale = max(self.min_lr_ratio, self.scale * self.factor)
            self.bad_reports = 0


def report_metric(scheduler: LambdaLR, value: float) -> None:
    """Feed a validation metric (higher is better) to schedules that react to it, once per validation.

    Every parameter group holds the same multiplier object (``_lambda``), so it is reported to once, not once
    per group: with an encoder LR group, ``patience`` still counts validations.
    """
    for multiplier in {id(m): m for m in scheduler.lr_lambdas}.values():
        if hasattr(multiplier, "report"):
            multiplier.report(value)


def _lambda(optimizer: torch.optim.Optimizer, multiplier: Multiplier) -> LambdaLR:
    return LambdaLR(optimizer, [multiplier] * len(optimizer.param_groups))


# Every schedule receives the run's total_iters and iters_per_epoch (optimizer steps) from the trainer.


@SCHEDULERS.register()
def CosineWarmup(optimizer: torch.optim.Optimizer, total_iters: int, iters_per_epoch: int, warmup_iters: int = 0,
                 min_lr_ratio: float = 0.0) -> LambdaLR:
    """Linear warmup, then cosine decay towards ``min_lr_ratio`` x LR, reached at ``total_iters``."""
    return _lambda(optimizer, _Cosine(total_iters, warmup_iters, min_lr_ratio))


@SCHEDULERS.register()
def CosineRestarts(optimizer: torch.optim.Optimizer, total_iters: int, iters_per_epoch: int, period_epochs: float = 10,
                   period_mult: float = 1.0, warmup_iters: int = 0, min_lr_ratio: float = 0.0) -> LambdaLR:
    """SGDR: cosine cycles of ``period_epochs`` (each ``period_mult`` x longer than the last) after warmup."""
    period = max(1, round(period_epochs * iters_per_epoch))
    return _lambda(optimizer, _CosineRestarts(total_iters, warmup_iters, period, period_mult, min_lr_ratio))


@SCHEDULERS.register()
def Poly(optimizer: torch.optim.Optimizer, total_iters: int, iters_per_epoch: int, power: float = 0.9,
         warmup_iters: int = 0, min_lr_ratio: float = 0.0) -> LambdaLR:
    """(1 - progress)^power, the DeepLab/mmsegmentation default."""
    return _lambda(optimizer, _Poly(total_iters, warmup_iters, power, min_lr_ratio))


@SCHEDULERS.register()
def Step(optimizer: torch.optim.Optimizer, total_iters: int, iters_per_epoch: int, milestones: Sequence[float] = (),
         gamma: float = 0.1, warmup_iters: int = 0) -> LambdaLR:
    """LR x gamma at each milestone, given in epochs (fractions allowed)."""
    milestone_iters = [round(m * iters_per_epoch) for m in milestones]
    return _lambda(optimizer, _Step(total_iters, warmup_iters, milestone_iters, gamma))


@SCHEDULERS.register()
def OneCycle(optimizer: torch.optim.Optimizer, total_iters: int, iters_per_epoch: int, warmup_iters: int | None = None,
             div_factor: float = 25.0, final_div_factor: float = 1e4) -> LambdaLR:
    """One-cycle LR (no momentum cycling): warmup over 30% of the run unless ``warmup_iters`` is given."""
    warmup = round(0.3 * total_iters) if warmup_iters is None else warmup_iters
    return _lambda(optimizer, _OneCycle(total_iters, warmup, div_factor, final_div_factor))


@SCHEDULERS.register()
def ReduceOnPlateau(optimizer: torch.optim.Optimizer, total_iters: int, iters_per_epoch: int, factor: float = 0.1,
                    patience: int = 2, warmup_iters: int = 0, min_lr_ratio: float = 0.0,
                    threshold: float = 1e-4) -> LambdaLR:
    """Warmup per iteration, then LR x factor after every ``patience`` validations in a row without a better mIoU.

    ``patience`` counts as ``train.early_stop`` does (the drop comes *at* the ``patience``-th stagnant
    validation); torch's ``ReduceLROnPlateau`` tolerates ``patience`` and drops at the next one.
    """
    if not (isinstance(patience, int) and patience >= 1):
        raise SegkitError(f"scheduler.patience={patience!r} must be an integer >= 1 (stagnant validations "
                          "before the LR drops)")
    return _lambda(optimizer, _Plateau(total_iters, warmup_iters, factor, patience, min_lr_ratio, threshold))
