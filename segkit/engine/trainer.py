"""The training loop: an explicit step, and hooks for everything optional."""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter

import segkit.losses  # noqa: F401  (registers losses)
from segkit import __version__
from segkit.config import Config
from segkit.data.batch import DeviceBatcher
from segkit.data.cutmix import from_config as cutmix_from_config
from segkit.data.leak_guard import check_training_sources
from segkit.data.loader import build_dataloader, build_dataset
from segkit.data.sampling import sample_seed
from segkit.engine.checkpoint import (
    load_checkpoint,
    restore_best,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from segkit.engine.dist import DistInfo, all_reduce_max, all_reduce_sum
from segkit.engine.hooks import CheckpointHook, EarlyStoppingHook, EMAHook, Hook, PlateauHook, ProgressHook, SWAHook
from segkit.engine.objective import Objective
from segkit.engine.optim import build_optimizer
from segkit.engine.precision import amp_dtype, autocast, grad_scaler
from segkit.engine.provenance import config_hash, git_state, parameter_counts, versions
from segkit.engine.run_log import setup_run_logger
from segkit.engine.validation import ValidationHook, run_validation
from segkit.engine.work_dir import append_metrics, copy_skip_reports, keep_metrics_lines, write_summary
from segkit.errors import SegkitError
from segkit.evaluation.evaluator import SegEvaluator
from segkit.evaluation.report import format_table
from segkit.losses.base import serial_on_cpu
from segkit.models.builder import build_model
from segkit.registry import LOSSES, SCHEDULERS, check_kwargs

_TINY = torch.finfo(torch.float32).tiny


def groups_of(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter): the micro-batches of one step."""
    iterator = iter(iterable)
    while group := list(itertools.islice(iterator, size)):
        yield group


class Trainer:
    """Builds everything from a resolved Config and runs epochs of :meth:`run_step`."""

    def __init__(self, cfg: Config, work_dir: Path, device: torch.device, progress: bool = True,
                 dist: DistInfo | None = None) -> None:
        self.cfg = cfg
        self.dist = dist or DistInfo()
        self.is_main = self.dist.is_main
        self.work_dir = Path(work_dir)
        self.checkpoint_dir = self.work_dir / "checkpoints"
        self.device = device
        self.progress = progress
        self.amp = cfg.train.amp
        amp_dtype(device, self.amp)  # refuse an impossible precision (fp16 off CUDA) before building anything
        self.seed = int(cfg.train.seed)
        if self.is_main:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        self.logger = setup_run_logger(self.work_dir if self.is_main else None, quiet=not self.is_main)
        seed_everything(self.seed)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = not cfg.train.deterministic

        train_set, val_set = build_dataset(cfg, "train"), build_dataset(cfg, "val")
        if val_set.classes != train_set.classes:
            raise SegkitError(f"{val_set.ann_file}: categories differ from {train_set.ann_file} "
                              f"({val_set.classes[1:]} vs {train_set.classes[1:]}); both splits need the same list")
        check_training_sources(train_set, val_set, cfg.data, progress=progress and self.is_main)
        self.classes = train_set.classes
        if self.is_main:
            parts = getattr(train_set, "parts", None)
            train_reports = {f"train_source{k}": part for k, part in enumerate(parts)} if parts else \
                {"train": train_set}
            copy_skip_reports(self.work_dir, {**train_reports, "val": val_set}, self.logger)
        shard = {"rank": self.dist.rank, "world_size": self.dist.world_size, "device": device, "seed": self.seed}
        self.train_loader = build_dataloader(cfg, "train", train_set, **shard)
        self.val_loader = build_dataloader(cfg, "val", val_set, **shard)
        if len(self.train_loader) == 0:
            raise SegkitError(f"{train_set.ann_file}: no training batches (0 images?)")

        self.model = build_model(cfg.model, num_classes=len(self.classes))
        if cfg.train.sync_bn and self.dist.enabled:
            if device.type == "cuda":
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            else:
                self.logger.warning("train.sync_bn: SyncBatchNorm needs CUDA; keeping BatchNorm on %s", device)
        self.model.to(device)
        self.net = self.model
        if self.dist.enabled:
            self.net = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        loss_fn = LOSSES.build(cfg.loss, where="loss", ignore_index=cfg.data.ignore_index).to(device)
        self.objective = Objective(loss_fn, aux_weight=float(getattr(self.model, "aux_weight", 0.4)))
        self.optimizer = build_optimizer(cfg.optimizer, self.model)
        self.accumulate = int(cfg.train.accumulate)
        self.steps_per_epoch = math.ceil(len(self.train_loader) / self.accumulate)
        self.max_epochs = int(cfg.train.epochs)
        self.max_iters = self.max_epochs * self.steps_per_epoch
        self.scheduler = SCHEDULERS.build(cfg.scheduler, where="scheduler", optimizer=self.optimizer,
                                          total_iters=self.max_iters, iters_per_epoch=self.steps_per_epoch)
        self.scaler = grad_scaler(device, self.amp)
        self.batcher = DeviceBatcher(device, cfg.data.mean, cfg.data.std)
        self.cutmix = cutmix_from_config(cfg.data.train.cutmix)
        self.evaluator = SegEvaluator(len(self.classes), self.classes, cfg.data.ignore_index, device,
                                      boundary_iou=cfg.evaluation.boundary_iou,
                                      boundary_dilation=cfg.evaluation.boundary_dilation)
        self.writer: SummaryWriter | None = None  # opened in train(), after a possible resume

        self.epoch = 0  # completed epochs
        self.epoch_step = 0  # optimizer steps done in the current epoch
        self.iter = 0  # completed optimizer steps
        self._step_totals: torch.Tensor | None = None  # the last step's (numerator, normaliser), on the device
        self._step_loss: float | None = math.nan
        self.step_images = 0  # images in the last step, over all ranks
        self.step_seconds = (0.0, 0.0)  # the last step's (data wait, step) host seconds
        self.train_images, self.train_step_seconds = 0, 0.0  # the run so far (resumes included): images/s
        self.best: dict[str, Any] = {"mIoU": -math.inf, "epoch": None, "iter": None, "IoU": None}
        self.is_best = False
        self.last_metrics: dict | None = None
        self.stop_requested = False
        self.schedule_frozen = False
        self.metrics_lines = 0  # lines of metrics.jsonl this run stands behind (a resume truncates to it)
        self.seconds_before = 0.0  # training time of the run before this process (resumed runs)
        self.clock_start: float | None = None  # perf_counter() when this process started training
        self.hooks = self._build_hooks()

    def _build_hooks(self) -> list[Hook]:
        train = self.cfg.train
        hooks: list[Hook] = [ProgressHook(train.log_interval)]
        self.ema_hook = EMAHook(self.model, **_options(train.ema, "train.ema", EMAHook)) if train.ema else None
        if self.ema_hook:
            hooks.append(self.ema_hook)
        evaluation = self.cfg.evaluation
        hooks += [ValidationHook(train.val_interval, panels=evaluation.panels, worst_k=evaluation.worst_k,
                                 class_images=evaluation.class_images, hparams=evaluation.hparams), PlateauHook()]
        if train.early_stop:
            hooks.append(EarlyStoppingHook(**_options(train.early_stop, "train.early_stop", EarlyStoppingHook)))
        if train.swa:
            hooks.append(SWAHook(self.model, **_options(train.swa, "train.swa", SWAHook)))
        hooks.append(CheckpointHook(train.checkpoint_iters, train.keep_last))
        return hooks

    @property
    def eval_model(self) -> torch.nn.Module:
        """The weights validation measures and best.pth is chosen by: the EMA average when enabled."""
        return self.ema_hook.model if self.ema_hook else self.model

    def run_step(self, micro_batches: list[dict[str, Any]]) -> None:
        """One optimizer step over ``accumulate`` micro-batches, queued without waiting for the device.

        The step's loss is (numerators summed over micro-batches and ranks) / (normalisers summed likewise),
        exactly one batch holding all the pixels. Each micro-batch backpropagates numerator / c (c: a size
        constant, equal on every rank, keeping fp16 gradients in range); before the step the gradients are
        multiplied by c x world_size / global normaliser (DDP's averaging over ranks undone). Nothing is read
        back to the host and nothing is copied to the device but the batch: the loss and its finiteness
        check come from :attr:`step_loss`, read once after the step.
        """
        divisor = self._gradient_divisor(micro_batches)
        totals = torch.zeros(2, device=self.device)  # numerator, normaliser
        for i, batch in enumerate(micro_batches):
            images, masks = self.batcher.images(batch), self.batcher.masks(batch)
            if self.cutmix is not None:  # seeded by (seed, iteration, micro-batch): nothing to save for resume
                generator = torch.Generator().manual_seed(sample_seed(self.seed, self.iter, 2**31 + i))
                images, masks = self.cutmix(images, masks, generator)
            last = i == len(micro_batches) - 1
            with self.net.no_sync() if self.dist.enabled and not last else contextlib.nullcontext():
                with autocast(self.device, self.amp):
                    numerator, normaliser = self.objective(self.net(images), masks)
                totals += torch.stack([numerator.detach().float(), normaliser.detach().float()])
                self.scaler.scale(numerator / divisor).backward()
        all_reduce_sum(totals)
        self.scaler.unscale_(self.optimizer)
        global_normaliser = totals[1]
        factor = torch.where(global_normaliser > 0,
                             divisor * self.dist.world_size / global_normaliser.clamp(min=_TINY), 0.0)
        grads = [p.grad for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        with serial_on_cpu(self.device):  # one pass over the gradients; see serial_on_cpu for why on one thread
            torch._foreach_mul_(grads, factor)
        if self.cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.scaler.step(self.optimizer)  # sync-free with fp16 only for fused optimizers (see build_optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if not self.schedule_frozen:
            self.scheduler.step()
        self._step_totals, self._step_loss = totals, None

    def _gradient_divisor(self, micro_batches: list[dict[str, Any]]) -> float | torch.Tensor:
        """c of :meth:`run_step`: the numerator's size; under DDP the largest over ranks (a device tensor)."""
        divisor = float(self.objective.scale(micro_batches[0]["mask"]) * len(micro_batches))
        if not self.dist.enabled:
            return divisor
        return all_reduce_max(torch.full((), divisor, device=self.device))

    @property
    def step_loss(self) -> float:
        """The last step's loss (NaN before the first step)."""
        return self.read_step_loss()

    def read_step_loss(self) -> float:
        """The last step's loss, read back on first call: the step's one host-device sync.

        A non-finite loss stops the run. It is checked on the rank sums, so every rank stops together
        instead of waiting in a collective, and the trainer reads it before any hook runs, so those weights
        never reach a checkpoint.
        """
        if self._step_loss is None:
            numerator, normaliser = self._step_totals.tolist()
            if not math.isfinite(numerator):
                last = self.checkpoint_dir / "last.pth"
                kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written yet"
                raise SegkitError(f"loss became {numerator} at epoch {self.epoch + 1}, iter {self.iter + 1}; "
                                  f"lower optimizer.lr or check the data; {kept}")
            self._step_loss = numerator / max(normaliser, 1e-12)
        return self._step_loss

    def train(self) -> dict[str, Any]:
        """Run the remaining epochs and return the summary also written to ``summary.json``."""
        self.clock_start = time.perf_counter()
        self.net.train()
        if self.is_main:  # purge_step drops TensorBoard events a killed run wrote after its last checkpoint
            self.writer = SummaryWriter(str(self.work_dir / "tb"), purge_step=self.iter or None)
        self.logger.info("training %s: %d epochs x %d iters on %s (%d process%s), classes: %s", self.cfg.model.type,
                         self.max_epochs, self.steps_per_epoch, self.device, self.dist.world_size,
                         "es" if self.dist.enabled else "", ", ".join(self.classes))
        self._call("before_train")
        batch_size = self.train_loader.batch_size
        while self.epoch < self.max_epochs and not self.stop_requested:
            self.train_loader.sampler.set_epoch(self.epoch, start=self.epoch_step * self.accumulate * batch_size)
            self._call("before_epoch")
            waited_since = time.perf_counter()
            for micro_batches in groups_of(self.train_loader, self.accumulate):
                fetched = time.perf_counter()
                self.run_step(micro_batches)
                self.read_step_loss()  # the step's one sync, and the NaN check before any hook saves weights
                self._count_step(micro_batches, fetched - waited_since, time.perf_counter() - fetched)
                self.iter += 1
                self.epoch_step += 1
                self._call("after_step")
                waited_since = time.perf_counter()
            self.epoch += 1
            self.epoch_step = 0
            self._call("after_epoch")
        self._call("after_train")
        summary = self._write_summary() if self.is_main else {}
        if self.writer is not None:
            self.writer.close()
        return summary

    def _count_step(self, micro_batches: list[dict[str, Any]], data_seconds: float, step_seconds: float) -> None:
        """Host clocks of the last step: waiting for the loader, and the step itself up to its loss read-back
        (which waits for the device, so no extra sync is needed for the step time to include the GPU's)."""
        self.step_images = sum(len(batch["image"]) for batch in micro_batches) * self.dist.world_size
        self.step_seconds = (data_seconds, step_seconds)
        self.train_images += self.step_images
        self.train_step_seconds += data_seconds + step_seconds

    def validate_extra(self, model: torch.nn.Module, tag: str) -> dict:
        """Validate other weights (SWA) at the end: a metrics.jsonl line with ``"model": tag``, ``<tag>.pth``."""
        metrics = run_validation(model, self.val_loader, self.evaluator, self.batcher, amp=self.amp,
                                 progress=self.progress and self.is_main)
        self.metrics_lines += 1
        if self.is_main:
            append_metrics(self.work_dir, {"epoch": self.epoch, "iter": self.iter, "model": tag, **metrics})
            if metrics["mIoU"] is not None:
                self.writer.add_scalar(f"val_{tag}/mIoU", metrics["mIoU"], self.iter)
            save_checkpoint({"model": model.state_dict(), "classes": list(self.classes), "epoch": self.epoch,
                             "iter": self.iter, "config": self.cfg.to_dict(), "segkit_version": __version__},
                            self.checkpoint_dir / f"{tag}.pth")
            self.logger.info("%s weights after epoch %d:\n%s\nsaved %s", tag, self.epoch, format_table(metrics),
                             self.checkpoint_dir / f"{tag}.pth")
        return metrics

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
            "epoch_step": self.epoch_step,
            "iter": self.iter,
            "best": self.best,
            "schedule_frozen": self.schedule_frozen,
            "stop_requested": self.stop_requested,
            "metrics_lines": self.metrics_lines,
            "train_seconds": self.train_seconds(),
            "train_images": self.train_images,
            "train_step_seconds": self.train_step_seconds,
            "world_size": self.dist.world_size,
            "hooks": {type(h).__name__: s for h in self.hooks if (s := h.state_dict()) is not None},
            "classes": list(self.classes),
            "rng": rng_state(),
            "config": self.cfg.to_dict(),
            "segkit_version": __version__,
        }

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint: weights, optimizer, schedule, counters, hooks, best so far and RNG states."""
        state = load_checkpoint(path)
        if state.get("classes") != list(self.classes):
            raise SegkitError(f"{path}: checkpoint classes {state.get('classes')} differ from the dataset's "
                              f"{self.classes}; resume with the config the run was started with")
        if "optimizer" not in state:
            raise SegkitError(f"{path} holds weights only (no optimizer state); resume from last.pth or an "
                              "epoch_<e>.pth, or start a new run with model.pretrained")
        self._check_same_schedule(path, state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:  # empty when the run had no fp16 scaler (CPU, or amp off)
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.epoch_step, self.iter = state["epoch"], state["epoch_step"], state["iter"]
        self.best, self.schedule_frozen = state["best"], state["schedule_frozen"]
        self.stop_requested, self.metrics_lines = state["stop_requested"], state["metrics_lines"]
        self.seconds_before = state.get("train_seconds", 0.0)
        self.train_images, self.train_step_seconds = state.get("train_images", 0), state.get("train_step_seconds", 0.0)
        for hook in self.hooks:
            if type(hook).__name__ in state["hooks"]:
                hook.load_state_dict(state["hooks"][type(hook).__name__])
        set_rng_state(state["rng"])
        if self.is_main:
            keep_metrics_lines(self.work_dir, self.metrics_lines)
            if restore_best(state, self.checkpoint_dir / "best.pth"):
                self.logger.info("best.pth was missing or older than %s, whose state is the best: rewritten", path)
        self.logger.info("resumed from %s at epoch %d (+%d steps), iter %d", path, self.epoch, self.epoch_step,
                         self.iter)

    def _check_same_schedule(self, path: str | Path, state: dict[str, Any]) -> None:
        """The step counters, the LR schedule and the sampler position only mean something for the same plan."""
        saved = state["config"]
        for key in ("train.epochs", "train.accumulate", "data.batch_size", "scheduler"):
            section, _, name = key.partition(".")
            before = saved[section][name] if name else saved[section]
            now = self.cfg[section][name] if name else self.cfg[section].to_dict()
            if before != now:
                raise SegkitError(f"{path}: the run was started with {key}={before!r}, now {now!r}; resume with the "
                                  "same value (to train longer or differently, start a new run with "
                                  f"--set model.pretrained={path})")
        if state["world_size"] != self.dist.world_size:
            raise SegkitError(f"{path}: the run used {state['world_size']} process(es), now {self.dist.world_size}; "
                              "resume with the same number (the data shards and batch positions depend on it)")

    def train_seconds(self) -> float:
        """Wall time spent training this run so far, over all the processes that resumed it."""
        running = time.perf_counter() - self.clock_start if self.clock_start is not None else 0.0
        return self.seconds_before + running

    def _write_summary(self) -> dict[str, Any]:
        """summary.json: the best result, and what a comparison of runs needs (see tools/compare_runs.py)."""
        config = self.cfg.to_dict()
        summary = {
            "best_mIoU": self.best["mIoU"] if math.isfinite(self.best["mIoU"]) else None,
            "best_epoch": self.best["epoch"],
            "best_iter": self.best["iter"],
            "best_IoU": self.best.get("IoU"),
            "last_metrics": self.last_metrics,
            "epochs": self.epoch,
            "iters": self.iter,
            "stopped_early": self.stop_requested,
            "train_seconds": round(self.train_seconds(), 1),
            "images_per_s": round(self.train_images / self.train_step_seconds, 2) if self.train_step_seconds else None,
            "classes": self.classes,
            "best_checkpoint": str(self.checkpoint_dir / "best.pth"),
            "config_hash": config_hash(config),
            **parameter_counts(self.model),
            "versions": versions(),
            "git": git_state(),
        }
        write_summary(self.work_dir, summary)
        self.logger.info("done: best mIoU %s at epoch %s; outputs in %s", summary["best_mIoU"], summary["best_epoch"],
                         self.work_dir)
        return summary


def _options(options: dict[str, Any], where: str, hook: type) -> dict[str, Any]:
    """Check a hook's config dict against its constructor before building it."""
    check_kwargs(hook, options, where=where)
    return dict(options)
