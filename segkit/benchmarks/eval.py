"""Evaluator throughput: SegEvaluator vs torchmetrics' MulticlassJaccardIndex on the same predictions.

Both get the same class-index predictions and targets (with ``ignore_index`` pixels) and produce per-class IoU
for the batch: reset, update, compute. Before timing, the run checks that both count the same confusion matrix
exactly and agree on every IoU (torchmetrics computes in float32, segkit in float64), so the speed-up is for
identical results. Timings are interleaved medians (``segkit.benchmarks.timing``).
"""

from __future__ import annotations

import argparse
import datetime
import platform

import torch

from segkit.benchmarks.report import Report
from segkit.benchmarks.timing import interleaved
from segkit.errors import SegkitError
from segkit.evaluation.evaluator import SegEvaluator

IGNORE = 255


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=16, help="images per batch (default 16)")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    parser.add_argument("--classes", type=int, default=12, help="number of classes (default 12)")
    parser.add_argument("--ignore-fraction", type=float, default=0.05,
                        help="fraction of target pixels set to 255 (default 0.05)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per candidate (default 7)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")


def make_batch(batch: int, size: int, classes: int, ignore_fraction: float, device: torch.device,
               seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocky random targets, predictions right on ~70% of pixels, and ignored pixels with any prediction."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, classes, (batch, 1, size // 16, size // 16), generator=gen).float()
    target = torch.nn.functional.interpolate(coarse, size=(size, size), mode="nearest")[:, 0].long()
    noise = torch.randint(0, classes, target.shape, generator=gen)
    pred = torch.where(torch.rand(target.shape, generator=gen) < 0.7, target, noise)
    target[torch.rand(target.shape, generator=gen) < ignore_fraction] = IGNORE
    return pred.to(device), target.to(device)


def run(args: argparse.Namespace, report: Report | None = None) -> int:
    report = report or Report("eval")
    from torchmetrics.classification import MulticlassJaccardIndex

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SegkitError("--device cuda but CUDA is not available here; use --device cpu")
    names = [f"class{i}" for i in range(args.classes)]
    pred, target = make_batch(args.batch, args.size, args.classes, args.ignore_fraction, device)
    ours = SegEvaluator(args.classes, names, IGNORE, device)
    theirs = MulticlassJaccardIndex(num_classes=args.classes, ignore_index=IGNORE, average=None).to(device)

    def segkit_iou() -> dict:
        ours.reset()
        ours.process(pred, target)
        return ours.evaluate()

    def torchmetrics_iou() -> torch.Tensor:
        theirs.reset()
        theirs.update(pred, target)
        return theirs.compute()

    ours_iou, their_iou = segkit_iou()["IoU"], torchmetrics_iou()
    if not torch.equal(ours.confusion.cpu(), theirs.confmat.cpu().long()):
        raise SegkitError("segkit and torchmetrics count different confusion matrices; the benchmark is void")
    worst = max(abs(ours_iou[n] - float(v)) for n, v in zip(names, their_iou.cpu()))
    if worst > 1e-6:
        raise SegkitError(f"per-class IoU differs by {worst:.2e} between segkit and torchmetrics")

    timings = interleaved({"segkit SegEvaluator": segkit_iou, "torchmetrics MulticlassJaccardIndex": torchmetrics_iou},
                          repeats=args.repeats)
    pixels = pred.numel()
    base = timings["torchmetrics MulticlassJaccardIndex"].median
    report.line(f"# eval benchmark, {datetime.date.today()}: {args.batch}x{args.size}x{args.size} px, {args.classes} "
                f"classes, {100 * args.ignore_fraction:.0f}% ignored, {device.type} ({platform.processor() or 'cpu'}, "
                f"{torch.get_num_threads()} threads), torch {torch.__version__}, median of {args.repeats}")
    report.line(f"identical confusion matrices; max per-class IoU difference {worst:.1e} (torchmetrics is float32)")
    report.line("| candidate | median ms | Mpixel/s | speed-up |")
    report.line("|---|---:|---:|---:|")
    for name, timing in timings.items():
        report.line(f"| {name} | {1000 * timing.median:.1f} | {pixels / timing.median / 1e6:.0f} | "
                    f"{base / timing.median:.1f}x |")
    report.ratio("SegEvaluator / torchmetrics time", timings["segkit SegEvaluator"].median / base, 1.0)
    return 0
