"""Runs that differ only by seed folded into one row: mean ± std (and min/max) of each metric over the seeds.

A sweep writes ``<arm>/seed<k>`` folders; ``compare_runs.py --group-seeds`` folds any runs named that way
alike, so a sweep folder and a hand-made set of runs are summarised by this one function. One seed's number
is the validation at that run's best epoch (the checkpoint ``best.pth`` holds), as in compare_runs.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from segkit.experiments.compare import differing_keys, flatten
from segkit.experiments.runs import Run

SEED_FOLDER = re.compile(r"^(?P<group>.+)/seed(?P<seed>\d+)$")
SEED_KEYS = ("train.seed",)  # what tells the seeds of one group apart, never a column
SECONDS = "train s"  # the one column in seconds, not in percent


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation (None for one seed), min and max of one metric over ``n`` seeds."""

    n: int
    mean: float
    std: float | None
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Spread | None:
        kept = [v for v in values if v is not None and math.isfinite(v)]
        if not kept:
            return None
        return cls(len(kept), statistics.fmean(kept), statistics.stdev(kept) if len(kept) > 1 else None,
                   min(kept), max(kept))

    def text(self, scale: float = 100.0, digits: int = 2) -> str:
        std = "" if self.std is None else f" ± {scale * self.std:.{digits}f}"
        return f"{scale * self.mean:.{digits}f}{std}"


@dataclass
class Group:
    """One arm: its name, its runs (one per seed) and the config values that set it apart from the others."""

    name: str
    runs: list[Run]
    keys: dict[str, Any]

    def spread(self, metric: str, cls: str | None = None) -> Spread | None:
        return Spread.of([run_metric(r, metric, cls) for r in self.runs])


def run_metric(run: Run, metric: str, cls: str | None = None) -> float | None:
    """``mIoU``/``mBoundaryIoU`` (or ``IoU``/``BoundaryIoU`` of ``cls``) at the best validation, ``train_seconds``."""
    if metric == "train_seconds":
        return (run.summary or {}).get("train_seconds")
    best = run.best
    if best is None:
        return None
    if cls is None:
        return best.get(metric)
    return (best.get(metric) or {}).get(cls)


def group_name(run: Run) -> str:
    """``Focal/seed2`` -> ``Focal``; a run not in a ``seed<k>`` folder is a group of its own."""
    match = SEED_FOLDER.match(run.name)
    if match:
        return match["group"]
    return run.path.resolve().parent.name if SEED_FOLDER.match(f"x/{run.path.name}") else run.name


def group_seeds(runs: Sequence[Run]) -> list[Group]:
    """Groups in order of first appearance, each with the config keys that differ between groups."""
    grouped: dict[str, list[Run]] = {}
    for run in runs:
        grouped.setdefault(group_name(run), []).append(run)
    keys = [k for k in differing_keys([r.config for r in runs]) if k not in SEED_KEYS]
    groups = []
    for name, members in grouped.items():
        flat = flatten(members[0].config)
        groups.append(Group(name, members, {k: flat.get(k, "-") for k in keys}))
    return groups


def seed_rows(groups: Sequence[Group], classes: Sequence[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and one row per group: keys, seeds, mIoU/mBoundaryIoU mean ± std + min/max, per-class IoU."""
    keys = list(groups[0].keys) if groups else []
    columns = ["arm", *keys, "seeds", "mIoU", "mIoU min", "mIoU max", "mBoundaryIoU", SECONDS,
               *[f"IoU {c}" for c in classes]]
    rows = []
    for group in groups:
        row: dict[str, Any] = {"arm": group.name, **group.keys, "seeds": len(group.runs),
                               "mIoU": group.spread("mIoU"), "mBoundaryIoU": group.spread("mBoundaryIoU"),
                               SECONDS: group.spread("train_seconds")}
        miou = row["mIoU"]
        row["mIoU min"], row["mIoU max"] = (miou.low, miou.high) if miou else (None, None)
        row.update({f"IoU {c}": group.spread("IoU", c) for c in classes})
        rows.append(row)
    return columns, rows


def cell(value: Any, column: str = "") -> str:
    """Spreads as ``mean ± std`` in percent (seconds as whole numbers), fractions in percent, keys as repr."""
    if value is None:
        return "-"
    if isinstance(value, Spread):
        return value.text(1.0, 0) if column == SECONDS else value.text()
    if isinstance(value, float):
        return f"{100 * value:.2f}"
    return value if isinstance(value, str) else repr(value)


def markdown_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in columns) + " |",
             "|" + "|".join("---" if not _numeric(rows, c) else "---:" for c in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(c), c).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines) + "\n"


def csv_rows(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Full precision: a spread becomes four columns (mean, std, min, max) as fractions."""
    header: list[str] = []
    for c in columns:
        header += [f"{c} mean", f"{c} std", f"{c} min", f"{c} max"] if _spread_column(rows, c) else [c]
    out = [header]
    for row in rows:
        line: list[str] = []
        for c in columns:
            value = row.get(c)
            if _spread_column(rows, c):
                line += ["", "", "", ""] if value is None else [
                    repr(value.mean), "" if value.std is None else repr(value.std), repr(value.low), repr(value.high)]
            else:
                line.append("" if value is None else value if isinstance(value, str) else repr(value))
        out.append(line)
    return out


def _spread_column(rows: Sequence[Mapping[str, Any]], column: str) -> bool:
    return any(isinstance(r.get(column), Spread) for r in rows)


def _numeric(rows: Sequence[Mapping[str, Any]], column: str) -> bool:
    return any(isinstance(r.get(column), Spread | int | float) and not isinstance(r.get(column), bool)
               for r in rows) and column != "arm"


def render_rows(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], fmt: str) -> str:
    """``md`` (percent, mean ± std) or ``csv`` (fractions, full precision, spreads as four columns)."""
    if fmt == "md":
        return markdown_table(columns, rows)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(csv_rows(columns, rows))
    return buffer.getvalue()
