"""Everything optional around the training step: progress, checkpoints, EMA, SWA, early stopping, plateaus.

Hooks run in list order at each point, so validation (which decides "best") comes before checkpointing.
A hook with state returns it from ``state_dict`` so a resumed run continues it exactly.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from segkit.engine.checkpoint import save_checkpoint
from segkit.engine.dist import average_buffers
from segkit.engine.optim import report_metric
from segkit.errors import SegkitError
from segkit.losses.base import serial_on_cpu

if TYPE_CHECKING:
    from segkit.engine.trainer import Trainer


class Hook:
    """Override any of these; the trainer calls them at the matching point with itself as argument."""

    def before_train(self, trainer: Trainer) -> None: ...
    def before_epoch(self, trainer: Trainer) -> None: ...
    def after_step(self, trainer: Trainer) -> None: ...
    def after_epoch(self, trainer: Trainer) -> None: ...
    def after_train(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict[str, Any] | None:
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ProgressHook(Hook):
    """A tqdm bar per epoch (loss, LR, images/s); every ``log_interval`` steps the mean loss, the LR, the mean
    data-wait and step seconds and the images/s of the interval go to TensorBoard and train.log.

    ``train/data_time`` well above zero next to ``train/step_time`` means the run waits for its loader (more
    ``data.num_workers``, a lighter pipeline); near zero means the model is the bottleneck.
    """

    def __init__(self, log_interval: int) -> None:
        self.log_interval = log_interval
        self.bar: tqdm | None = None
        self.loss_sum = 0.0
        self.loss_count = 0
        self._clock = [0.0, 0.0, 0]  # data seconds, step seconds, images in this interval (not resumed)

    def before_epoch(self, trainer: Trainer) -> None:
        self.bar = tqdm(total=trainer.steps_per_epoch, initial=trainer.epoch_step, leave=False, dynamic_ncols=True,
                        desc=f"epoch {trainer.epoch + 1}/{trainer.max_epochs}",
                        disable=not (trainer.progress and trainer.is_main))

    def after_step(self, trainer: Trainer) -> None:
        lr = trainer.optimizer.param_groups[-1]["lr"]
        self.loss_sum += trainer.step_loss
        self.loss_count += 1
        data_seconds, step_seconds = trainer.step_seconds
        self._clock = [self._clock[0] + data_seconds, self._clock[1] + step_seconds,
                       self._clock[2] + trainer.step_images]
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{trainer.step_loss:.4f}", lr=f"{lr:.2e}",
                             img_s=f"{trainer.step_images / max(data_seconds + step_seconds, 1e-9):.1f}")
        if trainer.iter % self.log_interval == 0:
            mean_loss = self.loss_sum / self.loss_count
            data_time, step_time = (seconds / self.loss_count for seconds in self._clock[:2])
            images_per_s = self._clock[2] / max(self._clock[0] + self._clock[1], 1e-9)
            if trainer.writer is not None:
                for tag, value in (("loss", mean_loss), ("lr", lr), ("data_time", data_time),
                                   ("step_time", step_time), ("images_per_s", images_per_s)):
                    trainer.writer.add_scalar(f"train/{tag}", value, trainer.iter)
            trainer.logger.info("epoch %d iter %d loss %.4f lr %.3e data %.3fs step %.3fs %.1f img/s",
                                trainer.epoch + 1, trainer.iter, mean_loss, lr, data_time, step_time, images_per_s)
            self.loss_sum, self.loss_count = 0.0, 0
            self._clock = [0.0, 0.0, 0]

    def after_epoch(self, trainer: Trainer) -> None:
        self.bar.close()

    def state_dict(self) -> dict[str, Any]:
        return {"loss_sum": self.loss_sum, "loss_count": self.loss_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loss_sum, self.loss_count = state["loss_sum"], state["loss_count"]


class CheckpointHook(Hook):
    """``last.pth`` after every epoch (and every ``iter_interval`` steps), ``best.pth`` on a new best mIoU,
    and the ``keep_last`` most recent ``epoch_<e>.pth``. Only rank 0 writes."""

    def __init__(self, iter_interval: int | None = None, keep_last: int = 0) -> None:
        self.iter_interval = iter_interval
        self.keep_last = keep_last

    def after_step(self, trainer: Trainer) -> None:
        if self.iter_interval and trainer.iter % self.iter_interval == 0 and trainer.is_main:
            save_checkpoint(trainer.state_dict(), trainer.checkpoint_dir / "last.pth")

    def after_epoch(self, trainer: Trainer) -> None:
        if not trainer.is_main:
            return
        state = trainer.state_dict()
        save_checkpoint(state, trainer.checkpoint_dir / "last.pth")
        if trainer.is_best:
            save_checkpoint(state, trainer.checkpoint_dir / "best.pth")
            trainer.logger.info("new best mIoU %.4f at epoch %d: saved best.pth", trainer.best["mIoU"], trainer.epoch)
        if self.keep_last:
            save_checkpoint(state, trainer.checkpoint_dir / f"epoch_{trainer.epoch}.pth")
            for old in sorted(trainer.checkpoint_dir.glob("epoch_*.pth"), key=lambda p: int(p.stem[6:]))[
                : -self.keep_last
            ]:
                old.unlink()


class EMAHook(Hook):
    """An exponential moving average of the weights (buffers included), updated every optimizer step.

    With EMA on, validation, best.pth selection and the saved ``ema`` weights use the average. The first
    update copies the model; later ones move every floating parameter and buffer towards the model's with one
    ``torch._foreach_lerp_`` (weight ``1 - decay``) and copy the integer buffers (BatchNorm's batch counters)
    with one ``torch._foreach_copy_``. No per-tensor Python loop, and the update count stays on the host, so
    the update queues a handful of kernels and never waits for the device.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999) -> None:
        if not 0.0 < decay < 1.0:
            raise SegkitError(f"train.ema.decay={decay} must be between 0 and 1 (e.g. 0.999)")
        self.decay = decay
        self.model = copy.deepcopy(model).requires_grad_(False)
        self.updates = 0
        pairs = list(zip(_tensors(self.model), _tensors(model), strict=True))
        self.device = pairs[0][0].device if pairs else torch.device("cpu")
        self._floats = ([a for a, _ in pairs if a.is_floating_point()], [b for a, b in pairs if a.is_floating_point()])
        self._others = ([a for a, _ in pairs if not a.is_floating_point()],
                        [b for a, b in pairs if not a.is_floating_point()])

    @torch.no_grad()
    def after_step(self, trainer: Trainer) -> None:
        averaged, current = self._floats
        with serial_on_cpu(self.device):  # small ops over many tensors: see serial_on_cpu
            if self.updates == 0:
                torch._foreach_copy_(averaged, current)
            elif averaged:
                torch._foreach_lerp_(averaged, current, 1.0 - self.decay)
            if self._others[0]:
                torch._foreach_copy_(*self._others)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        weights = state["model"]
        if "n_averaged" in weights:  # an AveragedModel's state, as segkit saved it before
            self.updates = int(weights["n_averaged"])
            weights = {k.removeprefix("module."): v for k, v in weights.items() if k != "n_averaged"}
        else:
            self.updates = state["updates"]
        self.model.load_state_dict(weights)


def _tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    """Parameters then buffers, detached, in registration order (the same order in a deep copy)."""
    return [t.detach() for t in itertools.chain(model.parameters(), model.buffers())]


class EarlyStoppingHook(Hook):
    """Stops training when validation mIoU has not improved by ``min_delta`` for ``patience`` validations."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best = -math.inf
        self.bad = 0
        self._seen: dict | None = None

    def after_epoch(self, trainer: Trainer) -> None:
        metrics = trainer.last_metrics
        if metrics is None or metrics is self._seen or metrics["mIoU"] is None:
            return
        self._seen = metrics
        if metrics["mIoU"] > self.best + self.min_delta:
            self.best, self.bad = metrics["mIoU"], 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            trainer.logger.info("early stopping: no mIoU gain above %.4f for %d validations (best %.4f)",
                                self.min_delta, self.patience, self.best)
            trainer.stop_requested = True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad = state["best"], state["bad"]


class PlateauHook(Hook):
    """Feeds each new validation mIoU to schedules that react to it (ReduceOnPlateau)."""

    def __init__(self) -> None:
        self._seen: dict | None = None

    def after_epoch(self, trainer: Trainer) -> None:
        metrics = trainer.last_metrics
        if metrics is not None and metrics is not self._seen and metrics["mIoU"] is not None:
            self._seen = metrics
            report_metric(trainer.scheduler, metrics["mIoU"])


class SWAHook(Hook):
    """Stochastic weight averaging of the weights at the end of every epoch from ``start_epoch`` on.

    From then on the LR is held at ``lr`` (x each group's share of the base LR) when given. After training the
    BatchNorm statistics of the average are re-estimated on the training data (segkit batches, not the tuples
    ``torch.optim.swa_utils.update_bn`` expects), it is validated, and saved as ``checkpoints/swa.pth``.
    """

    def __init__(self, model: torch.nn.Module, start_epoch: int, lr: float | None = None) -> None:
        if start_epoch < 1:
            raise SegkitError(f"train.swa.start_epoch={start_epoch} must be >= 1 (the first epoch averaged)")
        self.start_epoch, self.lr = start_epoch, lr
        self.model = AveragedModel(model)

    def before_train(self, trainer: Trainer) -> None:
        if trainer.epoch >= self.start_epoch:
            self._hold_lr(trainer)

    def before_epoch(self, trainer: Trainer) -> None:
        if trainer.epoch + 1 >= self.start_epoch:  # the epoch about to run is averaged at its end
            self._hold_lr(trainer)

    def _hold_lr(self, trainer: Trainer) -> None:
        if self.lr is not None and not trainer.schedule_frozen:
            base = trainer.optimizer.param_groups[-1]["initial_lr"]
            for group in trainer.optimizer.param_groups:
                group["lr"] = self.lr * group["initial_lr"] / base
            trainer.schedule_frozen = True

    def after_epoch(self, trainer: Trainer) -> None:
        if trainer.epoch >= self.start_epoch:
            self.model.update_parameters(trainer.model)

    def after_train(self, trainer: Trainer) -> None:
        if int(self.model.n_averaged) == 0:
            trainer.logger.info("SWA: no epoch reached start_epoch=%d; nothing averaged", self.start_epoch)
            return
        trainer.train_loader.sampler.set_epoch(trainer.epoch - 1)  # a whole epoch, even after a mid-epoch resume
        update_bn(self.model.module, trainer.train_loader, trainer.batcher)
        average_buffers(self.model.module)  # under DDP every rank estimated on its own shard
        trainer.validate_extra(self.model.module, tag="swa")

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])


@torch.no_grad()
def update_bn(model: torch.nn.Module, loader: Any, batcher: Any) -> None:
    """Recompute BatchNorm running statistics as a plain average over one pass of ``loader``.

    Inputs are prepared before any statistic is touched, so a batch format problem cannot leave the model
    with reset statistics (the failure mode of the stock ``update_bn`` on dict batches).
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    iterator = iter(loader)
    first = batcher.images(next(iterator))
    momenta = {m: m.momentum for m in norms}
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    try:
        model(first)
        for batch in iterator:
            model(batcher.images(batch))
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        model.train(was_training)
