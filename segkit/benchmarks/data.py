"""Data loading: segkit's loader (cold and warm mask cache) vs the competition baseline vs the floor.

All four run through a DataLoader with the same workers, batch size and augmentation pipeline over the
same images. The *baseline* is the trash competitions' loader: per item, pycocotools ``annToMask`` for
every annotation (via ``pycocotools.coco.COCO``) combined with ``np.maximum`` of class-scaled masks and
a float image divided by 255. The *floor* only decodes the image and reads an already cached mask.
segkit runs with ``overlap="max_class"`` so its masks can be checked against the baseline's pixel for
pixel (the default ``area_desc`` differs from it by design: small objects stay on top). Goals: warm
within 1.1x the floor's time per image, cold within 1.5x.

Every epoch gets a fresh DataLoader, and two clocks: wall time, and CPU time of the main process plus its
(reaped) workers. On a machine shared with other jobs, wall time swings with their load, while CPU time
per image stays close to the work each loader really does; the report gives both.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from pycocotools.coco import COCO
from torch.utils.data import DataLoader, Dataset, Subset

from segkit.benchmarks.report import Report
from segkit.benchmarks.timing import Timing
from segkit.config import load_config
from segkit.data.coco import CocoSegDataset
from segkit.data.demo import make_demo_dataset
from segkit.data.loader import build_dataloader
from segkit.data.mask_cache import decode_mask, encode_mask, mask_key
from segkit.data.transforms import build_pipeline
from segkit.errors import SegkitError

WARM_GOAL, COLD_GOAL = 1.1, 1.5
_COLD, _WARM = "segkit, cold cache", "segkit, warm cache"
_FLOOR, _BASELINE = "floor (decode + cached mask)", "baseline (annToMask + np.maximum)"
# The warm dataset without segkit's sampler and per-sample reseeding: separates the dataset's own cost
# from the loader machinery's.
_PLAIN = "segkit warm, plain DataLoader (no per-sample seeding)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ann", help="also measure this COCO json (needs --root)")
    parser.add_argument("--root", help="folder that the --ann json's file_name entries are relative to")
    parser.add_argument("--config", help="augment with this config's data.train.pipeline (default: none)")
    parser.add_argument("--images", type=int, default=96,
                        help="demo images to generate (6-10 objects each), and the cap for --ann")
    parser.add_argument("--size", type=int, default=512, help="demo image side (the trash photos' 512)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)


class BaselineDataset(Dataset):
    """The competition baseline's per-item work (see the module docstring), with the same class indices."""

    def __init__(self, ref: CocoSegDataset, pipeline: list[dict] | None) -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress lines
            self.coco = COCO(str(ref.ann_file))
        self.img_root = ref.img_root
        self.ids = [info["id"] for info in ref.images]
        self.cat_to_index = ref.cat_to_index
        self.pipeline = build_pipeline(pipeline)

    def __len__(self) -> int:
        return len(self.ids)

    def mask(self, i: int) -> np.ndarray:
        info = self.coco.imgs[self.ids[i]]
        mask = np.zeros((info["height"], info["width"]), np.uint8)
        for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=info["id"])):
            mask = np.maximum(self.coco.annToMask(ann) * np.uint8(self.cat_to_index[ann["category_id"]]), mask)
        return mask

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        path = self.img_root / self.coco.imgs[self.ids[i]]["file_name"]
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        sample = {"image": image, "mask": self.mask(i)}
        if self.pipeline is not None:
            sample = self.pipeline(**sample)
        return {"image": torch.from_numpy(np.ascontiguousarray(sample["image"].transpose(2, 0, 1))),
                "mask": torch.from_numpy(np.ascontiguousarray(sample["mask"]))}


class FloorDataset(Dataset):
    """Decode the image, read its mask from a warm cache file: what any loader must at least do."""

    def __init__(self, ref: CocoSegDataset, pipeline: list[dict] | None) -> None:
        assert ref.cache is not None
        self.items = []
        for i, info in enumerate(ref.images):
            key = mask_key(ref.annotations(i), info["height"], info["width"], ref.cat_to_index, ref.overlap, ref.crowd,
                           ref.ignore_index)
            self.items.append((ref.img_root / info["file_name"], ref.cache.path(key), info["height"], info["width"]))
        self.pipeline = build_pipeline(pipeline)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image_path, mask_path, height, width = self.items[i]
        image = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
        sample = {"image": image, "mask": decode_mask(mask_path.read_bytes(), height, width)}
        if self.pipeline is not None:
            sample = self.pipeline(**sample)
        return {"image": torch.from_numpy(np.ascontiguousarray(sample["image"].transpose(2, 0, 1))),
                "mask": torch.from_numpy(np.ascontiguousarray(sample["mask"]))}


def _init_worker(_: int) -> None:
    cv2.setNumThreads(0)  # as segkit's loader does, so every loader gets the same threading


def _plain_loader(dataset: Dataset, args: argparse.Namespace) -> DataLoader:
    return DataLoader(dataset, batch_size=args.batch_size, num_workers=args.workers,
                      worker_init_fn=_init_worker if args.workers else None)


def _segkit_loader(dataset: Dataset, args: argparse.Namespace) -> DataLoader:
    cfg = {"data": {"batch_size": args.batch_size, "val_batch_size": None, "num_workers": args.workers}}
    return build_dataloader(_Attr(cfg), "train", dataset=dataset, seed=0)


class _Attr(dict):
    """Just enough of a Config (attribute access) for build_dataloader."""

    def __getattr__(self, name: str) -> Any:
        value = self[name]
        return _Attr(value) if isinstance(value, dict) else value


def _subset(dataset: Dataset, count: int) -> Dataset:
    return dataset if len(dataset) <= count else Subset(dataset, range(count))


def measure_set(name: str, root: Path, ann: str, img_dir: str, args: argparse.Namespace,
                pipeline: list[dict] | None, scratch: Path, report: Report | None = None) -> str:
    """Time the four loaders on one COCO set; return its markdown section (its ratios go to ``report``)."""
    def segkit_set(cache_dir: Path) -> CocoSegDataset:
        return CocoSegDataset(root, ann=ann, img_dir=img_dir, pipeline=pipeline, overlap="max_class",
                              cache_dir=cache_dir)

    cold, warm = segkit_set(scratch / f"{name}-cold"), segkit_set(scratch / f"{name}-warm")
    for i in range(len(warm)):
        warm.mask(i)
    count = min(len(warm), args.images) // args.batch_size * args.batch_size
    if count == 0:
        raise SegkitError(f"{name}: fewer images than one batch of {args.batch_size}; lower --batch-size")
    baseline = BaselineDataset(warm, pipeline)
    floor = FloorDataset(warm, pipeline)
    identical, by_design = _compare_masks(warm, baseline, count, root, ann, img_dir)
    loaders = {
        _COLD: (lambda: _segkit_loader(_subset(cold, count), args), lambda: _empty(cold.cache.root)),
        _WARM: (lambda: _segkit_loader(_subset(warm, count), args), None),
        _BASELINE: (lambda: _plain_loader(_subset(baseline, count), args), None),
        _FLOOR: (lambda: _plain_loader(_subset(floor, count), args), None),
        _PLAIN: (lambda: _plain_loader(_subset(warm, count), args), None),
    }
    wall, cpu = _epochs(loaders, args.repeats)
    if report is not None:
        for label, name, goal in (("warm", _WARM, WARM_GOAL), ("cold", _COLD, COLD_GOAL)):
            report.ratio(f"loader, {label} mask cache / floor (wall)", wall[name].median / wall[_FLOOR].median, goal)
        report.ratio("baseline loader / segkit warm (wall)", wall[_BASELINE].median / wall[_WARM].median)
    sizes = sorted({(info["width"], info["height"]) for info in warm.images[:count]})
    shown_sizes = ", ".join(f"{w}x{h}" for w, h in sizes[:3]) + (" ..." if len(sizes) > 3 else "")
    objects = np.mean([len(warm.annotations(i)) for i in range(count)])
    lines = [
        f"### {name}: {count} images ({shown_sizes}), {objects:.1f} objects per image",
        "",
        _table(wall, cpu, count),
        "",
        f"Masks: segkit (`max_class`) equals the baseline on {identical} of {count} images; the default "
        f"`area_desc` differs from it on {by_design} of {count} (by design: small objects on top).",
        "",
        _verdict(wall, cpu),
    ]
    return "\n".join(lines)


def _empty(cache_root: Path) -> None:
    """A cold cache for the next epoch: the folder stays (workers hold it open), its masks go."""
    for child in cache_root.iterdir():
        shutil.rmtree(child)


def _epochs(loaders: dict[str, tuple[Callable[[], DataLoader], Callable[[], None] | None]],
            repeats: int) -> tuple[dict[str, Timing], dict[str, Timing]]:
    """Wall and CPU seconds per epoch: one untimed epoch each, then ``repeats`` rounds in alternation
    (A B C D A B C D ...) so that outside load hits all loaders alike; ``prepare`` runs untimed first."""
    wall = {name: Timing(name, []) for name in loaders}
    cpu = {name: Timing(name, []) for name in loaders}
    for round_ in range(repeats + 1):
        for name, (make_loader, prepare) in loaders.items():
            if prepare is not None:
                prepare()
            cpu_start, start = _cpu_seconds(), time.perf_counter()
            loader = make_loader()
            for _ in loader:
                pass
            seconds = time.perf_counter() - start
            del loader  # joins (and so reaps) persistent workers, whose CPU time then counts
            gc.collect()
            if round_ > 0:
                wall[name].seconds.append(seconds)
                cpu[name].seconds.append(_cpu_seconds() - cpu_start)
    return wall, cpu


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _compare_masks(warm: CocoSegDataset, baseline: BaselineDataset, count: int, root: Path, ann: str,
                   img_dir: str) -> tuple[int, int]:
    area_desc = CocoSegDataset(root, ann=ann, img_dir=img_dir, cache=False)
    identical = by_design = 0
    for i in range(count):
        reference = baseline.mask(i)
        identical += bool(np.array_equal(warm.mask(i), reference))
        by_design += not np.array_equal(area_desc.mask(i), reference)
    return identical, by_design


def _table(wall: dict[str, Timing], cpu: dict[str, Timing], count: int) -> str:
    rows = ["| loader | images/s | wall ms/image | CPU ms/image | wall x floor | CPU x floor | speed x baseline |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for name in wall:
        w, c = wall[name].median, cpu[name].median
        rows.append(f"| {name} | {count / w:.0f} | {1000 * w / count:.2f} | {1000 * c / count:.2f} | "
                    f"{w / wall[_FLOOR].median:.2f} | {c / cpu[_FLOOR].median:.2f} | "
                    f"{wall[_BASELINE].median / w:.2f} |")
    return "\n".join(rows)


def _verdict(wall: dict[str, Timing], cpu: dict[str, Timing]) -> str:
    parts = []
    for label, name, goal in (("warm", _WARM, WARM_GOAL), ("cold", _COLD, COLD_GOAL)):
        ratios = [clock[name].median / clock[_FLOOR].median for clock in (wall, cpu)]
        verdicts = ["met" if ratio <= goal else "MISSED" for ratio in ratios]
        parts.append(f"{label} {ratios[0]:.2f}x the floor in wall time ({verdicts[0]}), {ratios[1]:.2f}x in CPU "
                     f"time ({verdicts[1]}), goal <= {goal}x")
    return "Goals: " + "; ".join(parts) + "."


def mask_formats(dataset: CocoSegDataset, scratch: Path, repeats: int) -> str:
    """Read time and size of one mask per file in the cache's format, .npy and PNG."""
    masks = [dataset.mask(i) for i in range(min(len(dataset), 32))]
    folder = scratch / "formats"
    folder.mkdir()
    writers: dict[str, tuple[Callable[[Path, np.ndarray], None], Callable[[Path, int, int], Any]]] = {
        "segkit .skm (runs)": (lambda p, m: p.write_bytes(encode_mask(m)),
                               lambda p, h, w: decode_mask(p.read_bytes(), h, w)),
        ".npy": (lambda p, m: np.save(p, m), lambda p, h, w: np.load(p)),
        "PNG (cv2, level 1)": (lambda p, m: cv2.imwrite(str(p), m, [cv2.IMWRITE_PNG_COMPRESSION, 1]),
                               lambda p, h, w: cv2.imread(str(p), cv2.IMREAD_UNCHANGED)),
    }
    rows = ["| mask file | KB per mask | ms per read |", "|---|---:|---:|"]
    for label, (write, read) in writers.items():
        suffix = {"segkit .skm (runs)": ".skm", ".npy": ".npy"}.get(label, ".png")
        paths = [folder / f"{k}{suffix}" for k in range(len(masks))]
        for path, mask in zip(paths, masks):
            write(path, mask)
            if not np.array_equal(read(path, *mask.shape), mask):
                raise SegkitError(f"{label} did not round-trip a mask")
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            for path, mask in zip(paths, masks):
                read(path, *mask.shape)
            seconds.append((time.perf_counter() - start) / len(masks))
        kilobytes = np.mean([path.stat().st_size for path in paths]) / 1024
        rows.append(f"| {label} | {kilobytes:.1f} | {1000 * float(np.median(seconds)):.3f} |")
    return "\n".join(rows)


def run(args: argparse.Namespace, report: Report | None = None) -> int:
    report = report or Report("data")
    if (args.ann is None) != (args.root is None):
        raise SegkitError("--ann and --root go together: the json and the folder its file_name entries are under")
    for flag in ("images", "batch_size", "repeats"):
        if getattr(args, flag) < 1:
            raise SegkitError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    pipeline = list(load_config(args.config).data.train.pipeline) if args.config else None
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    report.line(f"Command: `{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`")
    report.line(f"Date: {date.today()}; {args.workers} workers, batch {args.batch_size}, median of {args.repeats} "
                f"epochs; {os.cpu_count()} CPU cores{load}; augmentation: "
                f"{[step['type'] for step in pipeline] if pipeline else 'none'}")
    with tempfile.TemporaryDirectory(prefix="segkit-bench-data-") as tmp:
        scratch = Path(tmp)
        demo = scratch / "demo"
        make_demo_dataset(demo, num_train=args.images, num_val=0, num_test=0, size=args.size,
                          objects_per_image=(6, 10), seed=0, progress=False)
        report.line()
        report.line(measure_set(f"demo {args.size}x{args.size}", demo, "train.json", "images", args, pipeline,
                                scratch, report))
        if args.ann:
            report.line()
            report.line(measure_set(Path(args.ann).name, Path(args.root), str(Path(args.ann).resolve()), ".", args,
                                    pipeline, scratch))
        report.line()
        report.line("### Mask file formats (demo masks)")
        report.line()
        reference = CocoSegDataset(demo, cache=False)
        report.line(mask_formats(reference, scratch, args.repeats))
    return 0

