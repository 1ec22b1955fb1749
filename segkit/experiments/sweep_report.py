"""A sweep folder's tables: per arm (mean ± std over seeds) and per arm x test-time augmentation.

Only finished runs (``done.json``) count; the tables say how many seeds each arm has so far, so a sweep still
running gives a partial table that says it is partial.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segkit.errors import SegkitError
from segkit.experiments.runs import Run, load_run
from segkit.experiments.seeds import Group, Spread, group_seeds, render_rows, seed_rows
from segkit.experiments.sweep import SCALES_SUFFIX, load_sweep, read_tta, run_done


@dataclass
class SweepTables:
    """The groups of a sweep's finished runs, what was planned, and the rendered tables."""

    root: Path
    plan: dict[str, Any]
    groups: list[Group]
    classes: list[str]

    @property
    def partial(self) -> dict[str, int]:
        """Arm -> finished seeds, for arms with fewer than planned."""
        done = {g.name: len(g.runs) for g in self.groups}
        return {arm: done.get(arm, 0) for arm in self.plan["arms"] if done.get(arm, 0) < self.plan["seeds"]}

    def arm_table(self) -> tuple[list[str], list[dict[str, Any]]]:
        return seed_rows(self.groups, self.classes)

    def tta_table(self) -> tuple[list[str], list[dict[str, Any]]]:
        """Rows = arms, columns = mIoU and mBoundaryIoU under each evaluated TTA mode (mean ± std over seeds)."""
        records = {g.name: [read_tta(r.path) for r in g.runs] for g in self.groups}
        modes = sorted({m for runs in records.values() for rec in runs for m in rec}, key=_mode_order)
        columns = ["arm", *[f"{metric} {mode}" for mode in modes for metric in ("mIoU", "mBoundaryIoU")]]
        rows = []
        for group in self.groups:
            row: dict[str, Any] = {"arm": group.name}
            for mode in modes:
                for metric in ("mIoU", "mBoundaryIoU"):
                    row[f"{metric} {mode}"] = Spread.of([rec[mode].get(metric) for rec in records[group.name]
                                                         if mode in rec])
            rows.append(row)
        return columns, rows if modes else []


def _mode_order(mode: str) -> tuple[int, int, str]:
    from segkit.inference.tta import TTA_MODES

    base = mode.removesuffix(SCALES_SUFFIX)
    return (TTA_MODES.index(base) if base in TTA_MODES else len(TTA_MODES), mode != base, mode)


def best_arm(tables: SweepTables, candidates: list[str]) -> str:
    """The candidate arm with the highest mean mIoU; every candidate must have all its planned seeds."""
    groups = {g.name: g for g in tables.groups}
    for name in candidates:
        if name not in tables.plan["arms"]:
            raise SegkitError(f"--best-of {name}: not an arm of {tables.root} ({', '.join(tables.plan['arms'])})")
        if name in tables.partial:
            raise SegkitError(f"--best-of {name}: {tables.partial[name]}/{tables.plan['seeds']} seeds finished in "
                              f"{tables.root}; finish the sweep first")
    return max(candidates, key=lambda n: groups[n].spread("mIoU").mean)  # type: ignore[union-attr]


def sweep_tables(root: Path) -> SweepTables:
    plan = load_sweep(root)
    runs: list[Run] = []
    for arm in plan["arms"]:
        for seed_dir in sorted((root / arm).glob("seed*"), key=lambda p: (len(p.name), p.name)):
            if run_done(seed_dir):
                runs.append(load_run(seed_dir, f"{arm}/{seed_dir.name}"))
    groups = group_seeds(runs)
    return SweepTables(root, plan, groups, runs[0].classes if runs else [])


def write_tables(tables: SweepTables) -> str:
    """arms.md/.csv and tta.md/.csv in the sweep folder; returns the markdown printed after a sweep."""
    parts = []
    for stem, (columns, rows) in (("arms", tables.arm_table()), ("tta", tables.tta_table())):
        if not rows:
            continue
        text = render_rows(columns, rows, "md")
        (tables.root / f"{stem}.md").write_text(text, encoding="utf-8")
        (tables.root / f"{stem}.csv").write_text(render_rows(columns, rows, "csv"), encoding="utf-8")
        parts.append(text)
    partial = tables.partial
    note = ("partial: finished seeds per arm " + ", ".join(f"{a} {n}/{tables.plan['seeds']}"
                                                           for a, n in partial.items())) if partial else ""
    legend = "IoU in percent at each run's best validation, mean ± sample std over seeds; train s in seconds"
    return "\n".join(parts) + f"\n{legend}\n" + (f"{note}\n" if note else "")
