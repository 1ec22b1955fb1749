"""Trainer step time: segkit's Trainer.run_step against a bare PyTorch loop on the same model and batch."""

from __future__ import annotations

import argparse
import copy
import datetime
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from segkit.benchmarks.report import Report
from segkit.benchmarks.timing import interleaved, ratio_table

REPO = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")


def run(args: argparse.Namespace, report: Report | None = None) -> int:
    report = report or Report("trainer")
    from segkit.config import load_config
    from segkit.data.demo import make_demo_dataset
    from segkit.engine.trainer import Trainer

    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        make_demo_dataset(root, num_train=args.batch, num_val=2, num_test=1, size=args.size, progress=False)
        cfg = load_config(REPO / "configs" / "demo_unet.py", [
            f"data.root={root}", "data.num_workers=0", f"data.batch_size={args.batch}", "data.train.pipeline=[]",
            f"model.encoder_name={args.encoder}", "scheduler.warmup_iters=0", "train.epochs=1000",
        ])
        trainer = Trainer(cfg, Path(tmp) / "work", device, progress=False)
        trainer.model.train()
        batch = next(iter(trainer.train_loader))

        model = copy.deepcopy(trainer.model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr, weight_decay=cfg.optimizer.weight_decay)
        mean = torch.tensor(cfg.data.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(cfg.data.std, device=device).view(1, 3, 1, 1)

        def bare_step() -> None:
            images = (batch["image"].to(device).float() - mean) / std
            masks = batch["mask"].to(device).long()
            loss = F.cross_entropy(model(images), masks, ignore_index=255)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        start = copy.deepcopy(trainer.model.state_dict())

        def same_start() -> None:
            """Both step from identical weights and fresh optimizer state: the arithmetic is the same."""
            for net, opt in ((trainer.model, trainer.optimizer), (model, optimizer)):
                net.load_state_dict(start)
                opt.state.clear()

        def segkit_step() -> None:
            """What the training loop does per step: run_step, then the loss read-back and NaN check."""
            trainer.run_step([batch])
            trainer.read_step_loss()

        candidates = {"bare PyTorch loop": bare_step, "segkit Trainer.run_step": segkit_step}
        results = interleaved(candidates, repeats=args.repeats, warmup=2, setup=same_start)
    ratio = results["segkit Trainer.run_step"].median / results["bare PyTorch loop"].median
    report.line(f"Trainer step, Unet {args.encoder}, batch {args.batch}x3x{args.size}x{args.size}, {args.device}, "
                f"{datetime.date.today()}")
    report.line(ratio_table(results, "bare PyTorch loop"))
    report.line(f"segkit / bare = {ratio:.3f}x")
    report.ratio(f"Trainer step / bare loop ({args.device})", ratio, 1.05)
    return 0
