"""Models: per registered type, parameters, GFLOPs, CPU latency, training-step memory, batch 1, ONNX export.

Every type of ``MODELS`` is measured with its default encoder, random weights (``encoder_weights=None``: cost
does not depend on the values), each in a fresh process so one model's memory cannot be counted in the next
one's. ``--save`` writes the measurements to the JSON file docs/models.md's architecture table is rendered
from (``--write-docs`` renders it); timings on a shared machine move with its load, so it is recorded too.

- GFLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over one eval forward of one image (a multiply-add
  counts 2); layers it has no formula for (pooling, norms, interpolation) count 0.
- latency: median eval forward of one image (``torch.inference_mode``) after the counted one (the warm-up).
- train MB: peak resident set size (``ru_maxrss``) during one AdamW training step at batch 2 (forward,
  cross-entropy, backward, step) minus the resident size just before it: activations, gradients and
  optimizer state, what a CPU run has to hold on top of the loaded model.
- batch 1: whether a training step on a batch of 1 works (BatchNorm after global pooling does not).
- ONNX: export (`segkit.deploy.onnx_export`) and the onnxruntime check at the measured size; `n/a` without onnxruntime.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segkit.benchmarks.report import Report, load_average, machine, now
from segkit.benchmarks.timing import measure
from segkit.errors import SegkitError

MEASURED = Path(__file__).resolve().parents[2] / "docs" / "models_measured.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=int, default=512, help="square image side in pixels")
    parser.add_argument("--classes", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per model (median)")
    parser.add_argument("--only", nargs="+", metavar="TYPE", help="model types to measure, e.g. HRNetOCR FPN")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--save", nargs="?", const=str(MEASURED), metavar="JSON",
                        help="write the measurements (default: docs/models_measured.json)")
    parser.add_argument("--write-docs", action="store_true",
                        help="render docs/models.md's architecture table from the registry and the saved file; "
                             "alone it measures nothing, with --save after measuring")


def resident_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: int, size: int, classes: int) -> None:
    model.train()
    out = model(torch.randn(batch, 3, size, size))
    logits = out["out"] if isinstance(out, dict) else out
    optimizer.zero_grad()
    F.cross_entropy(logits, torch.randint(0, classes, (batch, size, size))).backward()
    optimizer.step()


def trains_at_batch_1(model: nn.Module, size: int, classes: int) -> bool:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    try:
        train_step(model, optimizer, 1, size, classes)
    except SegkitError:
        return False
    return True


def onnx_export(model: nn.Module, size: int) -> str:
    """``yes``, or ``no: reason`` (the exporter's refusal or a failed onnxruntime check at ``size``); ``n/a``
    without the deploy extra."""
    if importlib.util.find_spec("onnxruntime") is None:
        return "n/a"
    from segkit.deploy.onnx_export import check_export, export_model

    with tempfile.TemporaryDirectory() as folder:
        try:
            path = export_model(model.eval(), Path(folder) / "model.onnx", {})
            check_export(model, path, sizes=((size, size),), batch=1)
        except Exception as err:  # any failure is the answer "does not export", recorded with its reason
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0].replace("|", "")
            return f"no: {reason[:80]}"  # no '|': the reason stands in a markdown table cell
    return "yes"


def measure_type(name: str, size: int, classes: int, repeats: int, threads: int | None) -> dict[str, Any]:
    """Everything about one model type, measured in the calling (fresh) process."""
    from segkit.models.builder import build_model
    from segkit.models.model_docs import default_encoder

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = {"type": name, "encoder_weights": None}
    model = build_model(cfg, num_classes=classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    before = resident_mb()
    train_step(model, optimizer, 2, size, classes)
    train_mb = peak_mb() - before
    batch1 = trains_at_batch_1(model, 64, classes)
    model.eval()
    image = torch.randn(1, 3, size, size)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(image)  # also the warm-up of the timed forwards
    with torch.inference_mode():
        seconds = measure(name, lambda: model(image), repeats=repeats, warmup=0).median
    params = sum(p.numel() for p in model.parameters())
    return {"type": name, "encoder": default_encoder(name), "params_m": params / 1e6,
            "gflops": counter.get_total_flops() / 1e9, "latency_ms": 1000 * seconds, "train_mb": train_mb,
            "batch1": batch1, "multiple": int(model.multiple), "min_size": int(getattr(model, "min_size", 1)),
            "onnx": onnx_export(model, size)}


def in_fresh_process(name: str, size: int, classes: int, repeats: int, threads: int | None) -> dict[str, Any]:
    """:func:`measure_type` in a new interpreter, its result read back as JSON from the last output line."""
    code = ("import json, sys; from segkit.benchmarks.models import measure_type; "
            "print(json.dumps(measure_type(*json.loads(sys.argv[1]))))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps([name, size, classes, repeats, threads])],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
        raise SegkitError(f"benchmark models: measuring {name} failed ({lines[-1]})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load() -> str:
    load = load_average()
    return "unknown" if load is None else f"{load:.1f}"


def row(m: dict[str, Any]) -> str:
    return (f"| {m['type']} | {m['encoder']} | {m['params_m']:.1f} | {m['gflops']:.1f} | {m['latency_ms']:.0f} | "
            f"{m['train_mb']:.0f} | {'yes' if m['batch1'] else 'no'} | {m['onnx']} |")


HEADER = ("| type | encoder | params M | GFLOPs | CPU ms/image | train step MB (batch 2) | batch 1 trains | ONNX |\n"
          "|---|---|---:|---:|---:|---:|---|---|")


def run(args: argparse.Namespace, report: Report | None = None) -> int:
    from segkit.models.model_docs import UNMEASURED
    from segkit.registry import MODELS

    report = report or Report("models")
    if args.write_docs and not args.save:  # render the stored run, measure nothing
        return _write_docs(report)
    names = [n for n in MODELS.names() if n not in UNMEASURED and (not args.only or n in args.only)]
    report.line(f"input 1x3x{args.size}x{args.size} on cpu, {args.threads or torch.get_num_threads()} threads, "
                f"load average {_load()}, median of {args.repeats} after 1 warm-up, {args.classes} classes, "
                "each type in a fresh process")
    report.line(HEADER)
    measured = []
    for name in names:
        m = in_fresh_process(name, args.size, args.classes, args.repeats, args.threads)
        measured.append(m)
        report.line(row(m))
    if args.save:
        record = {"machine": machine(), "date": now(), "size": args.size, "classes": args.classes,
                  "repeats": args.repeats, "load_after": _load(), "models": measured}
        Path(args.save).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        report.line(f"saved to {args.save}")
    return _write_docs(report) if args.write_docs else 0


def _write_docs(report: Report) -> int:
    from segkit.models.model_docs import DOC, write_table

    report.line(f"{DOC}: {'rewritten' if write_table(DOC) else 'unchanged'}")
    return 0
