"""The training loop: an explicit step, and hooks for everything optional."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

import segkit.engine.optim  # noqa: F401  (registers optimizers and schedules)
import segkit.losses  # noqa: F401  (registers losses)
from segkit import __version__
from segkit.config import Config
from segkit.data.batch import DeviceBatcher
from segkit.data.loader import build_dataloader, build_dataset, seed_pipeline
from segkit.engine.checkpoint import load_checkpoint, rng_state, set_rng_state
from segkit.engine.hooks import CheckpointHook, Hook, ProgressHook
from segkit.engine.precision import autocast, grad_scaler
from segkit.engine.run_log import setup_run_logger
from segkit.engine.validate import ValidationHook
from segkit.errors import SegkitError
from segkit.evaluation.evaluator import SegEvaluator
from segkit.models.builder import build_model
from segkit.registry import LOSSES, OPTIMIZERS, SCHEDULERS


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA on a machine without it is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SegkitError(f"train.device={name!r} but CUDA is not available here; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise SegkitError(f"train.device={name!r} is not a device; use auto, cpu or cuda") from err


class Trainer:
    """Builds everything from a resolved Config and runs epochs of :meth:`run_step`."""

    def __init__(self, cfg: Config, work_dir: Path, device: torch.device, progress: bool = True) -> None:
        if cfg.train.accumulate != 1:
            raise SegkitError(f"train.accumulate={cfg.train.accumulate}: gradient accumulation is not "
                              "available in this version; set train.accumulate=1")
        self.cfg = cfg
        self.work_dir = Path(work_dir)
        self.checkpoint_dir = self.work_dir / "checkpoints"
        self.device = device
        self.progress = progress
        self.amp = bool(cfg.train.amp)
        self.seed = int(cfg.train.seed)
        self.logger = setup_run_logger(self.work_dir)
        seed_everything(self.seed)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = not cfg.train.deterministic

        train_set = build_dataset(cfg, "train")
        val_set = build_dataset(cfg, "val")
        if val_set.classes != train_set.classes:
            raise SegkitError(f"{cfg.data.val.ann}: categories differ from {cfg.data.train.ann} "
                              f"({val_set.classes[1:]} vs {train_set.classes[1:]}); both splits need the same list")
        self.classes = train_set.classes
        self.train_loader = build_dataloader(cfg, "train", train_set, seed=self.seed, device=device)
        self.val_loader = build_dataloader(cfg, "val", val_set, seed=self.seed, device=device)
        if len(self.train_loader) == 0:
            raise SegkitError(f"{cfg.data.train.ann}: no training batches (0 images?)")

        self.model = build_model(cfg.model, num_classes=len(self.classes)).to(device)
        self.loss_fn = LOSSES.build(cfg.loss, where="loss", ignore_index=cfg.data.ignore_index).to(device)
        self.optimizer = OPTIMIZERS.build(cfg.optimizer, where="optimizer", params=self.model.parameters())
        self.max_epochs = int(cfg.train.epochs)
        self.max_iters = self.max_epochs * len(self.train_loader)
        self.scheduler = SCHEDULERS.build(cfg.scheduler, where="scheduler", optimizer=self.optimizer,
                                          total_iters=self.max_iters)
        self.scaler = grad_scaler(device, self.amp)
        self.batcher = DeviceBatcher(device, cfg.data.mean, cfg.data.std)
        self.evaluator = SegEvaluator(len(self.classes), self.classes, cfg.data.ignore_index, device)
        self.writer: SummaryWriter | None = None  # opened in train(), after a possible resume

        self.epoch = 0  # completed epochs
        self.iter = 0  # completed optimizer steps
        self.step_loss = math.nan
        self.best: dict[str, Any] = {"mIoU": -math.inf, "epoch": None, "iter": None}
        self.is_best = False
        self.last_metrics: dict | None = None
        self.hooks: list[Hook] = [ProgressHook(cfg.train.log_interval), ValidationHook(cfg.train.val_interval),
                                  CheckpointHook()]

    def run_step(self, batch: dict[str, Any]) -> None:
        images = self.batcher.images(batch)
        masks = self.batcher.masks(batch)
        with autocast(self.device, self.amp):
            loss = self.compute_loss(self.model(images), masks)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise SegkitError(f"loss became {loss_value} at epoch {self.epoch + 1}, iter {self.iter + 1}; "
                              f"lower optimizer.lr or check the data; the last good checkpoint is "
                              f"{self.checkpoint_dir / 'last.pth'}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.train.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step_loss = loss_value

    def compute_loss(self, outputs: torch.Tensor | dict[str, torch.Tensor], masks: torch.Tensor) -> torch.Tensor:
        """Models with an auxiliary head return ``{"out", "aux"}`` in training; aux adds ``aux_weight`` x loss."""
        if isinstance(outputs, dict):
            aux_weight = float(getattr(self.model, "aux_weight", 0.4))
            return self.loss_fn(outputs["out"], masks) + aux_weight * self.loss_fn(outputs["aux"], masks)
        return self.loss_fn(outputs, masks)

    def train(self) -> dict[str, Any]:
        """Run the remaining epochs and return the summary also written to ``summary.json``."""
        started = time.perf_counter()
        self.model.train()
        # purge_step drops TensorBoard events a killed run wrote after its last checkpoint.
        self.writer = SummaryWriter(str(self.work_dir / "tb"), purge_step=self.iter or None)
        self.logger.info("training %s: %d epochs x %d iters on %s, classes: %s", self.cfg.model.type,
                         self.max_epochs, len(self.train_loader), self.device, ", ".join(self.classes))
        self._call("before_train")
        while self.epoch < self.max_epochs:
            self._start_epoch()
            self._call("before_epoch")
            for batch in self.train_loader:
                self.run_step(batch)
                self.iter += 1
                self._call("after_step")
            self.epoch += 1
            self._call("after_epoch")
        self._call("after_train")
        self.writer.close()
        return self._write_summary(time.perf_counter() - started)

    def _start_epoch(self) -> None:
        """Shuffling and augmentation derive from (seed, epoch) only, so a resumed run sees the same data."""
        epoch_seed = self.seed + self.epoch
        self.train_loader.generator.manual_seed(epoch_seed)
        if self.train_loader.num_workers == 0:
            seed_pipeline(self.train_loader.dataset, epoch_seed)

    def _call(self, point: str) -> None:
        for hook in self.hooks:
            getattr(hook, point)(self)

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "iter": self.iter,
            "best": self.best,
            "classes": list(self.classes),
            "rng": rng_state(),
            "config": self.cfg.to_dict(),
            "segkit_version": __version__,
        }

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint: weights, optimizer, schedule, counters, best so far and RNG states."""
        state = load_checkpoint(path)
        if state.get("classes") != list(self.classes):
            raise SegkitError(f"{path}: checkpoint classes {state.get('classes')} differ from the dataset's "
                              f"{self.classes}; resume with the config the run was started with")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.iter, self.best = state["epoch"], state["iter"], state["best"]
        set_rng_state(state["rng"])
        self._drop_metrics_after(self.epoch)
        self.logger.info("resumed from %s at epoch %d, iter %d", path, self.epoch, self.iter)

    def _drop_metrics_after(self, epoch: int) -> None:
        """Validation lines written after the checkpoint was taken would be duplicated by the resumed run."""
        path = self.work_dir / "metrics.jsonl"
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            path.write_text("".join(ln for ln in lines if ln.strip() and json.loads(ln)["epoch"] <= epoch),
                            encoding="utf-8")

    def _write_summary(self, seconds: float) -> dict[str, Any]:
        summary = {
            "best_mIoU": self.best["mIoU"] if math.isfinite(self.best["mIoU"]) else None,
            "best_epoch": self.best["epoch"],
            "best_iter": self.best["iter"],
            "last_metrics": self.last_metrics,
            "epochs": self.epoch,
            "iters": self.iter,
            "train_seconds": round(seconds, 1),
            "classes": self.classes,
            "best_checkpoint": str(self.checkpoint_dir / "best.pth"),
        }
        (self.work_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        self.logger.info("done: best mIoU %s at epoch %s; outputs in %s", summary["best_mIoU"],
                         summary["best_epoch"], self.work_dir)
        return summary
