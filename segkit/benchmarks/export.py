"""Export: per-image CPU latency of PyTorch eager vs onnxruntime fp32 vs int8 (the deployment case).

Random weights and random normalised inputs (latency does not depend on the values); the int8 model is
calibrated on random inputs here, its quality is measured on real data in docs/deploy.md. Candidates run
interleaved (eager, fp32, int8, eager, ...) so load drift on a shared machine hits them alike.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segkit.benchmarks.report import Report
from segkit.benchmarks.timing import interleaved
from segkit.models.builder import build_model

MODELS: dict[str, dict[str, Any]] = {
    "demo Unet": dict(type="Unet", encoder_name="resnet18", decoder_channels=(128, 64, 32, 16, 16)),
    "EfficientUnet-b4": dict(type="EfficientUnet", encoder_name="efficientnet-b4"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=int, default=512, help="square image side in pixels")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch sizes")
    parser.add_argument("--classes", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calib", type=int, default=4, help="random images that calibrate the int8 model")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(MODELS), help="models to time")


def run(args: argparse.Namespace, report: Report | None = None) -> int:
    from segkit.deploy.onnx_export import INPUT, export_model
    from segkit.deploy.onnx_session import open_session
    from segkit.deploy.quantize import quantize_int8

    report = report or Report("export")
    report.line(f"per image ms at {args.size}x{args.size} on cpu, {torch.get_num_threads()} torch threads, "
                f"median of {args.repeats} interleaved repeats after 1 warm-up, {args.classes} classes")
    report.line("| model | batch | PyTorch eager | onnxruntime fp32 | int8 | fp32 x eager | int8 x eager |\n"
                "|---|---:|---:|---:|---:|---:|---:|")
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        for name, cfg in MODELS.items():
            if args.only and name not in args.only:
                continue
            model = build_model({**cfg, "encoder_weights": None}, num_classes=args.classes).eval()
            fp32 = export_model(model, Path(folder) / "model.onnx", {})
            calib = [torch.randn(1, 3, args.size, args.size, generator=generator).numpy() for _ in range(args.calib)]
            sessions = {"fp32": open_session(fp32), "int8": open_session(quantize_int8(fp32, calib))}
            for batch in args.batches:
                images = torch.randn(batch, 3, args.size, args.size, generator=generator)
                feed = {INPUT: images.numpy().astype(np.float32)}

                def eager(images: torch.Tensor = images, model: torch.nn.Module = model) -> None:
                    with torch.inference_mode():
                        model(images)

                timings = interleaved({"eager": eager, **{k: (lambda s=s, f=feed: s.run(None, f))
                                                          for k, s in sessions.items()}}, repeats=args.repeats)
                ms = {k: 1000 * t.median / batch for k, t in timings.items()}
                report.line(f"| {name} | {batch} | {ms['eager']:.1f} | {ms['fp32']:.1f} | {ms['int8']:.1f} | "
                            f"{ms['fp32'] / ms['eager']:.2f} | {ms['int8'] / ms['eager']:.2f} |")
                report.ratio(f"{name} batch {batch}: onnxruntime fp32 / eager", ms["fp32"] / ms["eager"], 0.8)
                report.ratio(f"{name} batch {batch}: int8 / eager", ms["int8"] / ms["eager"], 0.5)
    return 0
