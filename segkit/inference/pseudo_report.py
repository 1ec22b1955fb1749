"""The pseudo-labelling report: kept fraction and threshold per class, empty images, confidence histograms.

``--report report.md`` writes the Markdown table and ``report_confidence.png`` next to it: one panel per
class with the histogram of its pixels' confidence (log counts), the kept part in the class colour, the
dropped part grey, and the threshold as a dashed line, so a user sees at a glance how sure the teacher was
of each class and what the threshold cut.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from segkit.inference.confidence import BIN_VALUES
from segkit.inference.pseudo_label import PseudoLabelStats
from segkit.paths import StagedFile
from segkit.visualization.palette import class_colors

COARSE_BINS = 50
_LISTED = 20  # empty images named in the report; the rest are counted


def figure_path(report: str | Path) -> Path:
    report = Path(report)
    return report.with_name(f"{report.stem}_confidence.png")


def class_table(stats: PseudoLabelStats, min_area: int = 0) -> str:
    """Markdown: per class the predicted pixels, its threshold, the pixels kept and their fraction."""
    header = "| class | predicted px | threshold | kept px | kept |"
    rule = "|---|---:|---:|---:|---:|"
    if min_area > 1:
        header += " dropped by --min-area px |"
        rule += "---:|"
    rows = [header, rule]
    confident = stats.confident
    for c, name in enumerate(stats.classes):
        predicted, kept = int(stats.predicted[c]), int(stats.kept[c])
        threshold = stats.thresholds[c]
        row = (f"| {name} | {predicted} | {'-' if not math.isfinite(threshold) else f'{threshold:.6g}'} | {kept} | "
               f"{f'{kept / predicted:.1%}' if predicted else '-'} |")
        if min_area > 1:
            row += f" {int(confident[c]) - kept} |"
        rows.append(row)
    predicted, kept = int(stats.predicted.sum()), int(stats.kept.sum())
    rows.append(f"| **all** | {predicted} | | {kept} | {kept / predicted:.1%} |" + (" |" if min_area > 1 else "")
                if predicted else "| **all** | 0 | | 0 | - |")
    return "\n".join(rows)


def empty_images_text(stats: PseudoLabelStats) -> str:
    if not stats.empty:
        return f"Images with nothing confident: none of {stats.images}."
    listed = ", ".join(f"`{name}`" for name in stats.empty[:_LISTED])
    more = f" and {len(stats.empty) - _LISTED} more" if len(stats.empty) > _LISTED else ""
    return (f"Images with nothing confident (every pixel ignore; they add nothing to training): "
            f"{len(stats.empty)} of {stats.images}: {listed}{more}.")


def confidence_figure(stats: PseudoLabelStats) -> Figure:
    """One panel per class: log-count histogram of its pixels' confidence, kept vs dropped, the threshold."""
    classes = stats.classes
    columns = min(4, len(classes))
    rows = -(-len(classes) // columns)
    fig = Figure(figsize=(3.4 * columns, 2.5 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    colors = class_colors(len(classes)) / 255.0
    edges = np.linspace(0.0, 1.0, COARSE_BINS + 1)
    coarse = np.minimum(np.searchsorted(edges, BIN_VALUES, side="right") - 1, COARSE_BINS - 1)
    for c, name in enumerate(classes):
        ax = fig.add_subplot(rows, columns, c + 1)
        threshold = stats.thresholds[c]
        counts = stats.histogram.counts[c]
        keep = BIN_VALUES >= threshold
        kept = np.bincount(coarse, weights=counts * keep, minlength=COARSE_BINS)
        dropped = np.bincount(coarse, weights=counts * ~keep, minlength=COARSE_BINS)
        width = edges[1] - edges[0]
        ax.bar(edges[:-1], dropped, width=width, align="edge", color="0.7", label="dropped")
        ax.bar(edges[:-1], kept, width=width, align="edge", bottom=dropped, color=colors[c], edgecolor="0.3",
               linewidth=0.3, label="kept")
        predicted = int(counts.sum())
        if predicted:
            ax.set_yscale("log")
            ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
            share = int(stats.kept[c]) / predicted
            ax.set_title(f"{name}: {share:.0%} kept, t={threshold:.6g}", fontsize=9)
        else:
            ax.text(0.5, 0.5, "never predicted", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(name, fontsize=9)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=7)
        if c % columns == 0:
            ax.set_ylabel("pixels", fontsize=8)
        if c >= len(classes) - columns:
            ax.set_xlabel("confidence (max probability)", fontsize=8)
    fig.suptitle("pseudo-label confidence per predicted class (grey: below the threshold)", fontsize=10)
    return fig


def stage_report(path: str | Path, stats: PseudoLabelStats, header: Sequence[str],
                 min_area: int = 0) -> list[StagedFile]:
    """``path`` (Markdown) and its histogram PNG as temp files; they appear when the caller commits them."""
    path = Path(path)
    picture = figure_path(path)
    staged = [StagedFile(picture, "wb"), StagedFile(path, "w")]
    try:
        confidence_figure(stats).savefig(staged[0].handle, format="png")
        lines = [f"# Pseudo-labels: {header[0]}", "", *[f"- {line}" for line in header[1:]], "",
                 class_table(stats, min_area), "", empty_images_text(stats), "",
                 f"![confidence per class]({picture.name})", ""]
        staged[1].handle.write("\n".join(lines))
    except BaseException:
        for file in staged:
            file.abort()
        raise
    return staged
