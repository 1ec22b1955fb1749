"""Models: parameters and CPU forward time (batch 1, eval, no grad) of each architecture in docs/models.md.

Random weights (``encoder_weights=None``): the cost of a forward does not depend on the values. Timings on a
shared machine move with its load, so the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import torch
from torch import nn

from segkit.benchmarks.report import Report
from segkit.benchmarks.timing import measure
from segkit.models.builder import build_model

ARCHITECTURES: list[dict[str, Any]] = [
    dict(type="EfficientUnet", encoder_name="efficientnet-b0"),
    dict(type="EfficientUnet", encoder_name="efficientnet-b4"),
    dict(type="Unet", encoder_name="resnet34"),
    dict(type="UnetPlusPlus", encoder_name="resnet34"),
    dict(type="FPN", encoder_name="resnet34"),
    dict(type="DeepLabV3", encoder_name="resnet50"),
    dict(type="DeepLabV3Plus", encoder_name="resnet50"),
    dict(type="DeepLabV3Plus", encoder_name="resnet101"),
    dict(type="HRNetV2", backbone="hrnet_w18"),
    dict(type="HRNetV2", backbone="hrnet_w48"),
    dict(type="HRNetOCR", backbone="hrnet_w18"),
    dict(type="HRNetOCR", backbone="hrnet_w48"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=int, default=512, help="square image side in pixels")
    parser.add_argument("--classes", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", metavar="TYPE", help="architectures to time, e.g. HRNetOCR FPN")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")


def forward_seconds(model: nn.Module, images: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        return measure(type(model).__name__, lambda: model(images), repeats=repeats).median


def run(args: argparse.Namespace, report: Report | None = None) -> int:
    report = report or Report("models")
    if args.threads:
        torch.set_num_threads(args.threads)
    images = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    has_load = hasattr(os, "getloadavg")
    load = f", load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores" if has_load else ""
    report.line(f"input {tuple(images.shape)} on cpu, {torch.get_num_threads()} threads{load}, "
                f"median of {args.repeats} after 1 warm-up, {args.classes} classes")
    report.line("| architecture | encoder | params | CPU forward ms |\n|---|---|---:|---:|")
    for cfg in ARCHITECTURES:
        if args.only and cfg["type"] not in args.only:
            continue
        model = build_model({**cfg, "encoder_weights": None}, num_classes=args.classes).eval()
        params = sum(p.numel() for p in model.parameters())
        seconds = forward_seconds(model, images, args.repeats)
        encoder = cfg.get("encoder_name") or cfg["backbone"]
        report.line(f"| {cfg['type']} | {encoder} | {params / 1e6:.1f} M | {1000 * seconds:.0f} |")
    return 0
