"""Loss cost: BoundaryFocal vs CrossEntropy, forward + backward with boundary maps, on one random batch.

The issue's goal is BoundaryFocal <= 1.5x CrossEntropy at 8 x 12 x 512 x 512 on the CPU. Torch's fused
``F.cross_entropy`` and plain ``Focal`` are timed alongside to show where the extra cost comes from.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import torch
import torch.nn.functional as F

from segkit.benchmarks.report import Report
from segkit.benchmarks.timing import interleaved, ratio_table
from segkit.errors import SegkitError
from segkit.losses.boundary_weights import boundary_mask
from segkit.losses.cross_entropy import CrossEntropy
from segkit.losses.focal import BoundaryFocal, Focal

GOAL = 1.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--classes", type=int, default=12)
    parser.add_argument("--size", type=int, default=512, help="square image side in pixels")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")


def blob_target(batch: int, classes: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Masks with smooth blob-shaped regions (so there are real boundaries) and a few % ignored pixels."""
    cells = max(size // 32, 2)
    fields = torch.randn(batch, classes, cells, cells, generator=generator)
    target = F.interpolate(fields, size=(size, size), mode="bilinear", align_corners=False).argmax(1)
    holes = torch.randn(batch, 1, cells // 2 + 1, cells // 2 + 1, generator=generator)
    holes = F.interpolate(holes, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    return target.masked_fill_(holes > 1.2, 255)


def boundary_fraction(target: torch.Tensor) -> float:
    valid = target != 255
    return (boundary_mask(target, valid).sum() / valid.sum().clamp(min=1)).item()


def forward_backward(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], logits: torch.Tensor,
                     target: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        logits.grad = None
        loss_fn(logits, target).backward()

    return step


def run(args: argparse.Namespace, report: Report | None = None) -> int:
    report = report or Report("loss")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SegkitError(f"--device {args.device}: CUDA is not available here; use --device cpu")
    generator = torch.Generator().manual_seed(0)
    target = blob_target(args.batch, args.classes, args.size, generator).to(device)
    logits = (torch.randn(args.batch, args.classes, args.size, args.size, generator=generator) * 2).to(device)
    logits.requires_grad_()
    candidates = {
        "CrossEntropy": CrossEntropy(),
        "F.cross_entropy (torch)": lambda x, y: F.cross_entropy(x, y, ignore_index=255),
        "Focal": Focal(gamma=2.0),
        "BoundaryFocal": BoundaryFocal(gamma=2.0, boundary_weight=2.0, sigma=3.0),
    }
    steps = {name: forward_backward(fn, logits, target) for name, fn in candidates.items()}
    results = interleaved(steps, repeats=args.repeats)
    valid = target != 255
    # Other processes competing for the cores inflate the many small boundary-map ops far more than the
    # few large softmax ops, so the load is part of the measurement.
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    report.line(f"batch {tuple(logits.shape)} on {device}, {torch.get_num_threads()} threads{load}, "
                f"{100 * (1 - valid.float().mean()):.1f}% ignored, {100 * boundary_fraction(target):.1f}% boundary "
                f"pixels, repeats {args.repeats}")
    report.line(ratio_table(results, baseline="CrossEntropy"))
    ratio = results["BoundaryFocal"].median / results["CrossEntropy"].median
    verdict = "meets" if ratio <= GOAL else "misses"
    report.line(f"BoundaryFocal / CrossEntropy = {ratio:.2f}x ({verdict} the <= {GOAL}x goal)")
    report.ratio("BoundaryFocal / CrossEntropy", ratio, GOAL)
    return 0
