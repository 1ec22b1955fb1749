"""Train one run into its work dir: the steps ``train.py`` and ``train_kfold.py`` (one run per fold) share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from segkit.config import Config
from segkit.engine.dist import DistInfo, barrier
from segkit.engine.work_dir import prepare_work_dir


def train_run(cfg: Config, work_dir: Path, device: torch.device, resume: str | None = None, overwrite: bool = False,
              progress: bool = True, dist: DistInfo | None = None) -> dict[str, Any]:
    """Refuse or prepare the folder, write the resolved config, train (resuming when asked); the summary.

    Under DDP every rank calls this; only rank 0 writes.
    """
    from segkit.engine.trainer import Trainer  # heavy import, after the cheap checks

    dist = dist or DistInfo()
    cfg.work_dir = str(work_dir)
    checkpoint = prepare_work_dir(work_dir, resume, overwrite, delete=dist.is_main)
    if dist.is_main:
        work_dir.mkdir(parents=True, exist_ok=True)
        cfg.dump(work_dir / "config.py")
    barrier()
    trainer = Trainer(cfg, work_dir, device, progress=progress, dist=dist)
    if checkpoint is not None:
        trainer.resume(checkpoint)
    return trainer.train()
