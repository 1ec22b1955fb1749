"""Worker memory: RSS and private memory of the training loader's processes over two epochs of a large json.

A synthetic TACO-scale COCO json (default 20,000 images, about 10 polygons of ~16 vertices each; every image
record points at one shared tiny PNG, so the disk holds one image and the masks come from a warm mask cache)
goes through segkit's training loader (``build_dataset`` + ``build_dataloader``, 4 persistent workers,
shuffled, seeded per sample). At the first batch, every ``--sample-every`` batches and at the last batch the
benchmark reads ``/proc/<pid>/smaps_rollup`` of the main process and of each worker.

Two measures per process: RSS (resident pages, shared ones included) and USS (private pages: clean + dirty).
A forked worker starts with the parent's pages mapped, so its RSS counts them from the start and a
copy-on-write copy of a page it merely touches (Python's reference counts write to every object read) does
not raise RSS: it turns a shared page into a private one, which USS shows. The goal, from issue 12: the
workers' growth from the first to the last batch stays under 10% of the parent's RSS, in both measures.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from segkit.benchmarks.report import Report
from segkit.config import Config
from segkit.config_schema import DEFAULTS
from segkit.data.loader import build_dataloader, build_dataset
from segkit.errors import SegkitError

GOAL = 0.10  # workers' growth, first to last batch, as a fraction of the parent's RSS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, default=20_000, help="image records in the synthetic json")
    parser.add_argument("--objects", type=int, default=10, help="polygons per image (on average)")
    parser.add_argument("--vertices", type=int, default=16, help="vertices per polygon (on average)")
    parser.add_argument("--size", type=int, default=64, help="side of the one shared image, in pixels")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--sample-every", type=int, default=25, help="batches between memory readings")


def write_synthetic_coco(root: Path, images: int, objects: int, vertices: int, size: int, seed: int = 0) -> None:
    """``root/train.json`` + ``root/images/shared.png``: star-shaped polygons in ``size`` x ``size`` images."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    photo = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    cv2.imwrite(str(root / "images" / "shared.png"), photo)
    categories = [{"id": k, "name": f"class_{k}", "supercategory": "trash"} for k in range(60)]  # as many as TACO
    records, anns = [], []
    for image_id in range(images):
        records.append({"id": image_id, "file_name": "shared.png", "height": size, "width": size,
                        "license": None, "flickr_url": f"https://example.org/{image_id}.jpg"})
        for _ in range(max(1, int(rng.poisson(objects)))):
            count = max(3, int(rng.poisson(vertices)))
            centre = rng.uniform(0.2 * size, 0.8 * size, 2)
            angles = np.sort(rng.uniform(0, 2 * np.pi, count))
            radii = rng.uniform(0.05 * size, 0.2 * size, count)
            points = np.clip(centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None], 0, size - 1)
            x0, y0 = points.min(0)
            x1, y1 = points.max(0)
            anns.append({"id": len(anns), "image_id": image_id, "category_id": int(rng.integers(60)),
                         "segmentation": [np.round(points, 1).ravel().tolist()], "area": float((x1 - x0) * (y1 - y0)),
                         "bbox": [round(float(x0), 1), round(float(y0), 1), round(float(x1 - x0), 1),
                                  round(float(y1 - y0), 1)], "iscrowd": 0})
    with open(root / "train.json", "w", encoding="utf-8") as f:
        json.dump({"images": records, "annotations": anns, "categories": categories}, f)


def _config(root: Path, cache_dir: Path, args: argparse.Namespace) -> Config:
    """The default config (no augmentation) on the synthetic set."""
    cfg = Config(copy.deepcopy(DEFAULTS))
    cfg.data.update(root=str(root), cache_dir=str(cache_dir), batch_size=args.batch_size, num_workers=args.workers)
    return cfg


def _warm_cache(cfg: Config) -> None:
    """Rasterise every mask into the cache in a child process, so the measured parent holds nothing extra."""
    dataset = build_dataset(cfg, "train")
    for i in tqdm(range(len(dataset)), desc="warming the mask cache", leave=False):
        dataset.mask(i)


def memory_of(pid: int) -> tuple[int, int]:
    """``(RSS, USS)`` in bytes from ``/proc/<pid>/smaps_rollup`` (USS = private clean + private dirty)."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("Rss", "Private_Clean", "Private_Dirty"):
                fields[name] = int(rest.split()[0]) * 1024
    return fields["Rss"], fields["Private_Clean"] + fields["Private_Dirty"]


def children_of(pid: int) -> list[int]:
    """Child process ids (the DataLoader workers), by scanning ``/proc/*/stat``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


@dataclass
class Track:
    """Readings of one process: first, peak and last RSS and USS."""

    first: tuple[int, int] | None = None
    last: tuple[int, int] = (0, 0)
    peak: list[int] = field(default_factory=lambda: [0, 0])

    def add(self, reading: tuple[int, int]) -> None:
        self.first = self.first or reading
        self.last = reading
        self.peak = [max(p, r) for p, r in zip(self.peak, reading)]


def measure(cfg: Config, epochs: int, sample_every: int) -> tuple[dict[str, Track], float, int]:
    """Iterate ``epochs`` epochs of the training loader, reading memory as described in the module docstring."""
    dataset = build_dataset(cfg, "train")
    loader = build_dataloader(cfg, "train", dataset, seed=0)
    gc.collect()
    tracks: dict[str, Track] = {}
    main = os.getpid()
    batches, started = 0, time.perf_counter()
    total = epochs * len(loader)
    with tqdm(total=total, desc="epochs over the loader", leave=False) as bar:
        for epoch in range(epochs):
            loader.sampler.set_epoch(epoch)
            for _ in loader:
                batches += 1
                bar.update(1)
                if batches == 1 or batches % sample_every == 0 or batches == total:
                    tracks.setdefault("main", Track()).add(memory_of(main))
                    for k, pid in enumerate(children_of(main)):
                        tracks.setdefault(f"worker {k}", Track()).add(memory_of(pid))
    seconds = time.perf_counter() - started
    del loader
    return tracks, seconds, batches


def _mb(value: int) -> str:
    return f"{value / 2**20:.0f}"


def memory_table(tracks: dict[str, Track]) -> tuple[str, str, float]:
    """The markdown table, the verdict line, and the workers' USS growth as a fraction of the parent's RSS."""
    rows = ["| process | RSS first MB | RSS peak MB | RSS last MB | USS first MB | USS peak MB | USS last MB |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for name, track in tracks.items():
        rows.append(f"| {name} | {_mb(track.first[0])} | {_mb(track.peak[0])} | {_mb(track.last[0])} | "
                    f"{_mb(track.first[1])} | {_mb(track.peak[1])} | {_mb(track.last[1])} |")
    workers = [t for name, t in tracks.items() if name != "main"]
    parent = tracks["main"].first[0]
    parts = []
    for label, k in (("RSS", 0), ("USS", 1)):
        growth = sum(t.last[k] - t.first[k] for t in workers)
        verdict = "met" if growth < GOAL * parent else "MISSED"
        parts.append(f"{label} {growth / 2**20:+.0f} MB = {100 * growth / parent:.1f}% ({verdict})")
        fraction = growth / parent
    verdict = (f"Workers' growth from the first to the last batch, summed over {len(workers)} workers, against the "
               f"parent's {_mb(parent)} MB RSS: " + "; ".join(parts) + f"; goal < {100 * GOAL:.0f}%.")
    return "\n".join(rows), verdict, fraction


def run(args: argparse.Namespace, report: Report | None = None) -> int:
    report = report or Report("memory")
    if not os.path.exists(f"/proc/{os.getpid()}/smaps_rollup"):
        raise SegkitError("tools/benchmark.py memory reads /proc/<pid>/smaps_rollup: it needs Linux 4.14 or newer")
    for flag in ("images", "objects", "vertices", "workers", "batch_size", "epochs", "sample_every"):
        if getattr(args, flag) < 1:
            raise SegkitError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if args.vertices < 3:
        raise SegkitError(f"--vertices must be at least 3 (a polygon), got {args.vertices}")
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    report.line(f"Command: `{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`")
    with tempfile.TemporaryDirectory(prefix="segkit-bench-memory-") as tmp:
        root, cache_dir = Path(tmp) / "coco", Path(tmp) / "masks"
        write_synthetic_coco(root, args.images, args.objects, args.vertices, args.size)
        cfg = _config(root, cache_dir, args)
        warmer = multiprocessing.get_context("fork").Process(target=_warm_cache, args=(cfg,))
        warmer.start()
        warmer.join()
        if warmer.exitcode != 0:
            raise SegkitError(f"warming the mask cache failed (exit code {warmer.exitcode})")
        json_mb = (root / "train.json").stat().st_size / 2**20
        tracks, seconds, batches = measure(cfg, args.epochs, args.sample_every)
    table, verdict, uss_growth = memory_table(tracks)
    report.line(f"Date: {date.today()}; {args.images} images, {json_mb:.0f} MB json, {args.workers} workers, batch "
                f"{args.batch_size}, {args.epochs} epochs ({batches} batches in {seconds:.0f} s); {os.cpu_count()} CPU "
                f"cores{load}")
    report.line()
    report.line(table)
    report.line()
    report.line(verdict)
    report.ratio(f"workers' memory growth / parent RSS ({args.images} images)", uss_growth, GOAL)
    return 0
