"""One PNG comparing runs: validation mIoU curves beside a run x class heat map of IoU at each best epoch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from segkit.experiments.compare import Comparison
from segkit.experiments.runs import Run


def comparison_figure(runs: Sequence[Run], comparison: Comparison) -> Figure:
    classes = [c for c in comparison.metrics if c not in ("mIoU", "epoch", "mIoU (shared)")]
    by_name = {r.name: r for r in runs}
    names = comparison.runs
    height = max(4.0, 0.45 * len(names) + 2.5)
    fig = Figure(figsize=(7 + 0.55 * len(classes), height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    curves, heat = fig.subplots(1, 2, width_ratios=(1, max(1.0, 0.12 * len(classes))))
    for name in names:
        points = [(m["epoch"], m["mIoU"]) for m in by_name[name].metrics if m.get("mIoU") is not None]
        if points:
            epochs, scores = zip(*points)
            curves.plot(epochs, [100 * s for s in scores], marker="o", markersize=3, label=name)
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.set_xlabel("epoch")
    curves.set_ylabel("val mIoU (%)")
    curves.set_title("validation mIoU")
    curves.grid(alpha=0.3)
    if names:
        curves.legend(fontsize=8)
    grid = np.array([[np.nan if (v := comparison.values[n].get(c)) is None else 100 * v for c in classes]
                     for n in names], dtype=float).reshape(len(names), len(classes))
    shown = heat.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if np.isfinite(grid[i, j]):
                heat.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=7,
                          color="black" if grid[i, j] > 60 else "white")
    heat.set_xticks(range(len(classes)), classes, rotation=45, ha="right", rotation_mode="anchor")
    heat.set_yticks(range(len(names)), names)
    heat.set_title("IoU (%) per class at each run's best epoch")
    fig.colorbar(shown, ax=heat, fraction=0.046, pad=0.03)
    return fig


def save_comparison_plot(runs: Sequence[Run], comparison: Comparison, path: str | Path) -> Path:
    """Written to a temporary file and renamed, so an interrupted run leaves no broken PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    try:
        comparison_figure(runs, comparison).savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
