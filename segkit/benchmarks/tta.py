"""TTA inference: segkit's Predictor against ttach's SegmentationTTAWrapper and plain forwards, and its memory.

Same model (Unet on random weights, eval) and same batch for every candidate; ttach wraps the model with a
softmax so both merge probabilities (and takes the argmax, as segkit's labels do), and the run first checks
that both give the same probabilities and labels. segkit runs at its default inputs per forward for the
device (``DEFAULT_BATCH``) and, for comparison, with all views of the batch in one forward. Ratios: segkit
flip / ttach flip, segkit d4 / ttach d4, segkit flip / two plain forwards (the floor for two views), segkit
no-TTA Predictor / one bare forward (the overhead). Then peak RSS of the whole
``infer-tta`` command (submission + PNGs, flip TTA) on 200 and on 1000 small images, each in a fresh process.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
import ttach
from torch import nn

from segkit.benchmarks.report import Report
from segkit.benchmarks.timing import interleaved, ratio_table
from segkit.errors import SegkitError
from segkit.inference.predictor import default_batch_size

REPO = Path(__file__).resolve().parents[2]
CLASSES = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=2, help="images per batch (default 2)")
    parser.add_argument("--size", type=int, default=256, help="square image side (default 256)")
    parser.add_argument("--encoder", default="resnet18", help="Unet encoder (default resnet18)")
    parser.add_argument("--repeats", type=int, default=11, help="timed repeats per candidate (default 11)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--memory-images", type=int, nargs=2, default=(200, 1000), metavar=("FEW", "MANY"),
                        help="image counts for the peak-RSS runs (default 200 1000; 0 0 skips them)")


class _Softmax(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(images), dim=1)


def _model_config(encoder: str) -> dict:
    return dict(type="Unet", encoder_name=encoder, encoder_weights=None)


def _timings(args: argparse.Namespace, device: torch.device, report: Report) -> dict:
    from segkit.inference.predictor import Member, Predictor
    from segkit.inference.tta import TTASpec
    from segkit.models.builder import build_model

    torch.manual_seed(0)
    model = build_model(_model_config(args.encoder), num_classes=CLASSES).to(device).eval()
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 3, args.size, args.size), dtype=torch.uint8, generator=gen)
    member = Member(model)
    normalised = ((images.float() - torch.tensor(member.mean).view(1, 3, 1, 1))
                  / torch.tensor(member.std).view(1, 3, 1, 1)).to(device)
    images = images.to(device)
    # segkit at its default inputs per forward for the device, and with every view of the batch in one forward.
    predictors = {mode: Predictor([member], tta=TTASpec(mode), device=device) for mode in ("none", "flip", "d4")}
    batched = {mode: Predictor([member], tta=TTASpec(mode), device=device, batch_size=args.batch * views)
               for mode, views in (("flip", 2), ("d4", 8))}
    wrappers = {mode: ttach.SegmentationTTAWrapper(_Softmax(model), transforms, merge_mode="mean")
                for mode, transforms in (("flip", ttach.Compose([ttach.HorizontalFlip()])),
                                         ("d4", ttach.aliases.d4_transform()))}
    with torch.inference_mode():
        for mode, wrapper in wrappers.items():
            theirs = wrapper(normalised)
            top2 = theirs.topk(2, dim=1).values
            clear = (top2[:, 0] - top2[:, 1]) > 1e-4  # labels must agree wherever the decision is not a tie
            for predictor in (predictors[mode], batched[mode]):
                ours = predictor.predict_batch(images)
                gap = (ours.probs - theirs).abs().max().item()
                same = torch.equal(ours.labels[clear], theirs.argmax(1)[clear])
                if gap > 1e-5 or not same:
                    raise SegkitError(f"segkit and ttach {mode} differ (max |p| gap {gap:.1e}, same labels: {same}); "
                                      "the benchmark is void")
            report.line(f"{mode}: same probabilities as ttach (max difference {gap:.1e}), same labels")

        candidates = {
            "bare forward": lambda: model(normalised),
            "segkit Predictor, no TTA": lambda: predictors["none"].predict_batch(images),
            "two plain forwards": lambda: (model(normalised), model(normalised.flip(-1))),
            "segkit flip": lambda: predictors["flip"].predict_batch(images),
            "segkit flip, views in one forward": lambda: batched["flip"].predict_batch(images),
            "ttach flip": lambda: wrappers["flip"](normalised).argmax(1),
            "segkit d4": lambda: predictors["d4"].predict_batch(images),
            "segkit d4, views in one forward": lambda: batched["d4"].predict_batch(images),
            "ttach d4": lambda: wrappers["d4"](normalised).argmax(1),
        }
        return interleaved(candidates, repeats=args.repeats, warmup=1)


def _write_inputs(folder: Path, count: int, size: int = 64) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(count):
        cv2.imwrite(str(folder / f"{k:05d}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def _write_checkpoint(path: Path, encoder: str) -> None:
    from segkit.config import load_config
    from segkit.engine.checkpoint import save_checkpoint
    from segkit.models.builder import build_model

    cfg = load_config(REPO / "configs" / "demo_unet.py", [f"model.encoder_name={encoder}", "data.num_workers=0"])
    model = build_model(cfg.model, num_classes=CLASSES)
    save_checkpoint({"model": model.state_dict(), "classes": ["Background", *(f"c{k}" for k in range(1, CLASSES))],
                     "config": cfg.to_dict()}, path)


def _peak_rss_mb(checkpoint: Path, folder: Path, out: Path) -> float:
    """Run infer-tta in a fresh process; its peak resident set size (ru_maxrss) in MB."""
    code = ("import resource, sys; from segkit.cli.infer_tta import main; "
            "code = main(sys.argv[1:]); "
            "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)")
    argv = [str(checkpoint), "--input", str(folder), "--out-dir", str(out / "pred"), "--tta", "flip",
            "--submission", str(out / "submission.csv"), "--save-png", "--no-progress", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SegkitError(f"the infer-tta memory run failed: {done.stderr.strip().splitlines()[-1:]}")
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RSS ")][-1]
    return int(line.split()[1]) / 1024  # Linux reports kilobytes


def run(args: argparse.Namespace, report: Report | None = None) -> int:
    report = report or Report("tta")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SegkitError("--device cuda but CUDA is not available here; use --device cpu")
    load = f", load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores" if hasattr(os, "getloadavg") else ""
    report.line(f"# tta benchmark, {datetime.datetime.now():%Y-%m-%d %H:%M}: Unet {args.encoder}, {CLASSES} "
                f"classes, batch {args.batch}x3x{args.size}x{args.size}, {device.type} "
                f"({torch.get_num_threads()} threads{load}), torch {torch.__version__}, interleaved median of "
                f"{args.repeats}; segkit at {default_batch_size(device)} inputs per forward (its default here)")
    results = _timings(args, device, report)
    report.line(ratio_table(results, "bare forward"))
    med = {name: timing.median for name, timing in results.items()}
    overhead = med["segkit Predictor, no TTA"] / med["bare forward"]
    ratios = {"Predictor (no TTA) / bare forward": (overhead, 1.10),
              "segkit flip / ttach flip": (med["segkit flip"] / med["ttach flip"], 1.00),
              "segkit d4 / ttach d4": (med["segkit d4"] / med["ttach d4"], None),
              "segkit flip / two plain forwards": (med["segkit flip"] / med["two plain forwards"], 1.15)}
    for what, (value, target) in ratios.items():
        report.line(f"{what} = {value:.3f}x" + (f" (target <= {target:.2f})" if target else ""))
        report.ratio(what, value, target)

    few, many = args.memory_images
    if few and many:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            _write_checkpoint(tmp / "model.pth", args.encoder)
            rss = {}
            for count in (few, many):
                _write_inputs(tmp / f"in{count}", count)
                rss[count] = _peak_rss_mb(tmp / "model.pth", tmp / f"in{count}", tmp / f"out{count}")
        report.ratio(f"peak RSS {many} / {few} images", rss[many] / rss[few], 1.05)
        report.line(f"peak RSS of infer-tta (flip, submission + PNGs, 64 px images, CPU): {few} images "
                    f"{rss[few]:.0f} MB, {many} images {rss[many]:.0f} MB ({rss[many] / rss[few]:.3f}x)")
    return 0
