"""Median-of-repeats timing, so every benchmark reports ratios measured the same way in the same run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Timing:
    name: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def measure(name: str, fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed (CUDA synchronised around each)."""
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return Timing(name, seconds)


def interleaved(candidates: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1,
                setup: Callable[[], object] | None = None) -> dict[str, Timing]:
    """Time candidates in alternation (A B A B ...) so machine-load drift hits all of them alike.

    ``setup`` runs untimed before every call, e.g. to restore identical starting weights.
    """
    for fn in candidates.values():
        for _ in range(warmup):
            if setup is not None:
                setup()
            fn()
    results = {name: Timing(name, []) for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            if setup is not None:
                setup()
            results[name].seconds.extend(measure(name, fn, repeats=1, warmup=0).seconds)
    return results


def ratio_table(results: dict[str, Timing], baseline: str) -> str:
    """Markdown rows: candidate, median ms, ratio to ``baseline`` (lower is faster)."""
    base = results[baseline].median
    rows = ["| candidate | median ms | x baseline |", "|---|---:|---:|"]
    for name, timing in results.items():
        rows.append(f"| {name} | {1000 * timing.median:.1f} | {timing.median / base:.2f} |")
    return "\n".join(rows)
