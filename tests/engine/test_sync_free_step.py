"""The training step queues work without waiting for the device: no host read-backs, no blocking copies.

On CUDA this runs under ``torch.cuda.set_sync_debug_mode("error")``. On the CPU a sync cannot be observed, so
a guard counts what would be one on a GPU when segkit's own code does it: a tensor turned into a Python value
(``item``, ``tolist``, ``bool``/``int``/``float``, ``numpy``, ``cpu``), a tensor made from Python data
(``torch.tensor``/``as_tensor``) or a copy without ``non_blocking=True``. Host-side randomness drawn from a
CPU generator (CutMix's ``draw``) is allowed by name.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

import segkit
from segkit.config import load_config
from segkit.engine.trainer import Trainer, groups_of

SEGKIT = str(Path(segkit.__file__).parent)
HOST_SIDE = {("cutmix.py", "draw"), ("cutmix.py", "sample_box")}  # CPU-generator draws, by design
OPTIONS = ["train.accumulate=2", "train.ema={'decay': 0.9}", "train.grad_clip=1.0", "data.batch_size=2",
           "data.train.cutmix={'p': 1.0}", "scheduler.warmup_iters=1"]


class SyncGuard:
    """Counts, per ``file:function``, the sync-like calls segkit's own frames make while installed."""

    TENSOR_METHODS = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "numpy", "cpu")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: Counter[str] = Counter()
        self.monkeypatch = monkeypatch

    def _count(self) -> None:
        frame = sys._getframe(2)
        path = frame.f_code.co_filename
        if path.startswith(SEGKIT) and (Path(path).name, frame.f_code.co_name) not in HOST_SIDE:
            self.calls[f"{Path(path).name}:{frame.f_code.co_name}:{frame.f_lineno}"] += 1

    def _wrap(self, original):
        def counted(*args, **kwargs):
            self._count()
            return original(*args, **kwargs)

        return counted

    def _wrap_copy(self, original):
        def counted(tensor, *args, **kwargs):
            if not kwargs.get("non_blocking", False):
                self._count()
            return original(tensor, *args, **kwargs)

        return counted

    def __enter__(self) -> SyncGuard:
        for name in self.TENSOR_METHODS:
            self.monkeypatch.setattr(torch.Tensor, name, self._wrap(getattr(torch.Tensor, name)))
        for name in ("to", "cuda", "copy_"):
            self.monkeypatch.setattr(torch.Tensor, name, self._wrap_copy(getattr(torch.Tensor, name)))
        for name in ("tensor", "as_tensor"):
            self.monkeypatch.setattr(torch, name, self._wrap(getattr(torch, name)))
        return self

    def __exit__(self, *exc: object) -> None:
        self.monkeypatch.undo()


def make_trainer(config: Path, work_dir: Path, device: torch.device, *extra: str) -> Trainer:
    return Trainer(load_config(config, [*OPTIONS, *extra]), work_dir, device, progress=False)


def test_the_step_and_the_ema_update_make_no_sync_like_call(tiny_config, tmp_path, monkeypatch):
    trainer = make_trainer(tiny_config(epochs=1), tmp_path / "w", torch.device("cpu"), "train.amp=True")
    trainer.net.train()
    steps = list(groups_of(trainer.train_loader, trainer.accumulate))
    assert len(steps) >= 2 and all(len(step) == 2 for step in steps)
    losses = []
    for micro_batches in steps:
        with SyncGuard(monkeypatch) as guard:
            trainer.run_step(micro_batches)
            trainer.ema_hook.after_step(trainer)
        assert not guard.calls, dict(guard.calls)
        losses.append(trainer.step_loss)  # the one read-back, after the step
        trainer.iter += 1
    assert all(math.isfinite(loss) for loss in losses)
    with SyncGuard(monkeypatch) as guard:  # the guard sees segkit's read-backs: this one is counted
        trainer._step_loss = None
        trainer.read_step_loss()
    assert any(key.startswith("trainer.py:read_step_loss") for key in guard.calls)


@pytest.mark.cuda
@pytest.mark.parametrize("amp", ["fp16", "bf16", False])
def test_cuda_steps_run_under_sync_debug_mode_error(tiny_config, tmp_path, amp):
    """fp16 with GradScaler (fused AdamW), bf16, float32; accumulation 2, EMA, CutMix, clipping."""
    trainer = make_trainer(tiny_config(epochs=1), tmp_path / "w", torch.device("cuda"), f"train.amp={amp!r}")
    assert trainer.scaler.is_enabled() == (amp == "fp16")
    trainer.net.train()
    steps = list(groups_of(trainer.train_loader, trainer.accumulate))
    for micro_batches in steps[:1]:  # warm-up: cuDNN autotuning and lazy allocations may synchronise once
        trainer.run_step(micro_batches)
        trainer.ema_hook.after_step(trainer)
    torch.cuda.synchronize()
    losses = []
    for micro_batches in steps[1:] * 2:
        torch.cuda.set_sync_debug_mode("error")
        try:
            trainer.run_step(micro_batches)
            trainer.ema_hook.after_step(trainer)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        losses.append(trainer.step_loss)
        trainer.iter += 1
    assert len(losses) >= 2 and all(math.isfinite(loss) for loss in losses)
