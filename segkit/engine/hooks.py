"""Everything optional around the training step: progress and checkpoints (validation is in validate.py).

Hooks run in list order at each point, so validation (which decides "best") comes before checkpointing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tqdm import tqdm

from segkit.engine.checkpoint import save_checkpoint

if TYPE_CHECKING:
    from segkit.engine.trainer import Trainer


class Hook:
    """Override any of these; the trainer calls them at the matching point with itself as argument."""

    def before_train(self, trainer: Trainer) -> None: ...
    def before_epoch(self, trainer: Trainer) -> None: ...
    def after_step(self, trainer: Trainer) -> None: ...
    def after_epoch(self, trainer: Trainer) -> None: ...
    def after_train(self, trainer: Trainer) -> None: ...


class ProgressHook(Hook):
    """A tqdm bar per epoch; every ``log_interval`` steps the loss and LR go to TensorBoard and train.log."""

    def __init__(self, log_interval: int) -> None:
        self.log_interval = log_interval
        self.bar: tqdm | None = None
        self.loss_sum = 0.0
        self.loss_count = 0

    def before_epoch(self, trainer: Trainer) -> None:
        self.bar = tqdm(total=len(trainer.train_loader), desc=f"epoch {trainer.epoch + 1}/{trainer.max_epochs}",
                        leave=False, dynamic_ncols=True, disable=not trainer.progress)

    def after_step(self, trainer: Trainer) -> None:
        loss = trainer.step_loss
        lr = trainer.optimizer.param_groups[0]["lr"]
        self.loss_sum += loss
        self.loss_count += 1
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
        if trainer.iter % self.log_interval == 0:
            mean_loss = self.loss_sum / self.loss_count
            trainer.writer.add_scalar("train/loss", mean_loss, trainer.iter)
            trainer.writer.add_scalar("train/lr", lr, trainer.iter)
            trainer.logger.info("epoch %d iter %d loss %.4f lr %.3e", trainer.epoch + 1, trainer.iter,
                                mean_loss, lr)
            self.loss_sum, self.loss_count = 0.0, 0

    def after_epoch(self, trainer: Trainer) -> None:
        self.bar.close()


class CheckpointHook(Hook):
    """``last.pth`` after every epoch, ``best.pth`` when validation just set a new best mIoU."""

    def after_epoch(self, trainer: Trainer) -> None:
        state = trainer.state_dict()
        save_checkpoint(state, trainer.checkpoint_dir / "last.pth")
        if trainer.is_best:
            save_checkpoint(state, trainer.checkpoint_dir / "best.pth")
            trainer.logger.info("new best mIoU %.4f at epoch %d: saved best.pth", trainer.best["mIoU"],
                                trainer.epoch)
