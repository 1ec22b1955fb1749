"""Plots and a markdown summary of ``segkit.data.analysis`` statistics, several annotation files side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

from segkit.data.analysis import LARGE, SIZE_NAMES, SMALL, FileStats, size_counts
from segkit.paths import output_dir

_LABEL_SIZE = 9
_TITLE_SIZE = 12


def write_report(files: list[FileStats], out: str | Path, progress: bool = True) -> Path:
    """Write the PNG plots and ``summary.md`` (which links them) to ``out``; return the summary's path."""
    out = output_dir(out)
    classes = _union_classes(files)
    aligned = [_align(f, classes) for f in files]
    plots = {
        "class_objects.png": ("Objects per class", _plot_class_objects),
        "class_pixel_share.png": ("Pixel share per class", _plot_pixel_share),
        "class_object_sizes.png": ("Object size per class", _plot_class_sizes),
        "objects_per_image.png": ("Objects per image", _plot_objects_per_image),
        "object_sizes.png": ("Object sizes", _plot_object_sizes),
        "image_sizes.png": ("Image sizes", _plot_image_sizes),
    }
    for file_name, (_, plot) in tqdm(plots.items(), desc="plots", unit="plot", disable=not progress, leave=False):
        fig = plot(files, classes, aligned)
        fig.savefig(out / file_name, dpi=100)
    summary = out / "summary.md"
    summary.write_text(_summary(files, classes, aligned, {k: v[0] for k, v in plots.items()}), encoding="utf-8")
    return summary


def _union_classes(files: list[FileStats]) -> list[str]:
    """Class names of all files, first file's order first; a name is one class across files."""
    names: dict[str, None] = {}
    for f in files:
        names.update(dict.fromkeys(f.classes))
    return list(names)


def _align(stats: FileStats, classes: list[str]) -> dict[str, np.ndarray]:
    """Per-class arrays of one file, re-indexed to the union ``classes``."""
    where = np.array([classes.index(c) for c in stats.classes], np.int64)
    out = {key: np.zeros(len(classes)) for key in ("objects", "images", "share")}
    out["objects"][where] = stats.objects_per_class
    out["images"][where] = stats.images_with_class
    out["share"][where] = stats.pixel_share
    out["sizes"] = np.zeros((len(classes), 3))
    out["sizes"][where] = size_counts(stats)
    out["object_class"] = where[stats.object_class] if stats.object_class.size else stats.object_class
    return out


# --- plots -----------------------------------------------------------------------------------------------


def _class_figure(n_rows: int, n_series: int = 1) -> tuple[Figure, Any]:
    """A figure tall enough for one readable row (label + bars) per class."""
    height = max(3.5, 0.22 * n_rows * (1 + 0.45 * (n_series - 1)) + 1.6)
    fig = Figure(figsize=(10, height), layout="constrained")
    return fig, fig.add_subplot()


def _style_class_axis(ax: Any, labels: list[str], title: str, xlabel: str) -> None:
    ax.set_yticks(range(len(labels)), labels, fontsize=_LABEL_SIZE)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first (largest) class at the top
    ax.set_title(title, fontsize=_TITLE_SIZE)
    ax.set_xlabel(xlabel, fontsize=_LABEL_SIZE + 1)
    ax.tick_params(axis="x", labelsize=_LABEL_SIZE)
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.set_axisbelow(True)


def _grouped_barh(ax: Any, files: list[FileStats], values: list[np.ndarray], fmt: str, log: bool) -> None:
    """One bar per file and class, each labelled with its value; log scale when values span decades."""
    n = len(values)
    height = 0.8 / n
    for s, (f, v) in enumerate(zip(files, values)):
        offsets = np.arange(len(v)) - 0.4 + height * (s + 0.5)
        bars = ax.barh(offsets, v, height=height * 0.92, label=f.name, color=f"C{s}")
        ax.bar_label(bars, labels=[fmt.format(x) if x > 0 else "" for x in v], padding=2,
                     fontsize=_LABEL_SIZE - 1)
    positive = np.concatenate(values)
    positive = positive[positive > 0]
    if log and positive.size:
        ax.set_xscale("log")
        ax.set_xlim(positive.min() / 1.5, positive.max() * 4)
    elif positive.size:
        ax.set_xlim(0, positive.max() * 1.15)
    left = ax.get_xlim()[0]
    for s, v in enumerate(values):  # a zero has no bar to label, but is worth seeing
        for row in np.flatnonzero(v == 0):
            ax.text(left * 1.05 if log else 0, row - 0.4 + height * (s + 0.5), " 0", va="center",
                    fontsize=_LABEL_SIZE - 1)
    if n > 1:
        ax.legend(fontsize=_LABEL_SIZE, loc="lower right")


def _spans_decades(values: list[np.ndarray]) -> bool:
    positive = np.concatenate(values)
    positive = positive[positive > 0]
    return positive.size > 0 and positive.max() / positive.min() > 50


def _plot_class_objects(files: list[FileStats], classes: list[str], aligned: list[dict]) -> Figure:
    order = np.argsort(-sum(a["objects"] for a in aligned), kind="stable")
    values = [a["objects"][order] for a in aligned]
    fig, ax = _class_figure(len(classes), len(files))
    log = _spans_decades(values)
    _grouped_barh(ax, files, values, "{:.0f}", log)
    _style_class_axis(ax, [classes[k] for k in order], "Objects (annotations) per class",
                      "objects" + (" (log scale)" if log else ""))
    return fig


def _plot_pixel_share(files: list[FileStats], classes: list[str], aligned: list[dict]) -> Figure:
    order = np.argsort(-sum(a["share"] for a in aligned), kind="stable")
    values = [100 * a["share"][order] for a in aligned]
    fig, ax = _class_figure(len(classes), len(files))
    log = _spans_decades(values)
    _grouped_barh(ax, files, values, "{:.2g}%", log)
    _style_class_axis(ax, [classes[k] for k in order],
                      "Pixel share per class (mean over images of the class's area fraction)",
                      "% of image pixels" + (" (log scale)" if log else ""))
    return fig


def _plot_class_sizes(files: list[FileStats], classes: list[str], aligned: list[dict]) -> Figure:
    """Per class: median, 25-75% box and 5-95% whisker of relative object size, all files together."""
    rel = np.concatenate([f.relative_area for f in files]) * 100
    cls = np.concatenate([a["object_class"] for a in aligned])
    rows = [(k, rel[cls == k]) for k in range(len(classes)) if np.any(cls == k)]
    rows.sort(key=lambda r: -np.median(r[1]))
    fig, ax = _class_figure(len(rows))
    for y, (_, v) in enumerate(rows):
        p5, p25, p50, p75, p95 = np.percentile(v, [5, 25, 50, 75, 95])
        ax.hlines(y, p5, p95, color="0.45", linewidth=1)
        ax.barh(y, p75 - p25, left=p25, height=0.6, color="C0", alpha=0.55)
        ax.plot([p50], [y], marker="|", markersize=11, markeredgewidth=2.5, color="C3")
        ax.text(p95 * 1.15, y, f"n={len(v)}", va="center", fontsize=_LABEL_SIZE - 1, color="0.3")
    ax.set_xscale("log")
    if rows:
        ax.set_xlim(rel.min() / 1.5, rel.max() * 6)
    _style_class_axis(ax, [classes[k] for k, _ in rows],
                      "Object size per class: median (red), 25-75% (box), 5-95% (line)",
                      "object area, % of its image (log scale)")
    return fig


def _plot_objects_per_image(files: list[FileStats], classes: list[str], aligned: list[dict]) -> Figure:
    """Integer bars up to the 99th percentile (at least 10); the last bar collects every larger count."""
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.add_subplot()
    everything = np.concatenate([f.objects_per_image for f in files])
    cap = max(10, int(np.ceil(np.percentile(everything, 99)))) if everything.size else 10
    fractions = len(files) > 1
    width = 0.8 / len(files)
    for s, f in enumerate(files):
        counts = np.bincount(np.minimum(f.objects_per_image, cap), minlength=cap + 1).astype(np.float64)
        if fractions:
            counts *= 100 / max(f.num_images, 1)
        ax.bar(np.arange(cap + 1) - 0.4 + width * (s + 0.5), counts, width * 0.92, color=f"C{s}",
               label=f"{f.name} (mean {f.objects_per_image.mean():.1f}, max {f.objects_per_image.max(initial=0)})")
    ticks = list(range(0, cap, max(1, cap // 15))) + [cap]
    ax.set_xticks(ticks, [str(t) for t in ticks[:-1]] + [f"≥{cap}"], fontsize=_LABEL_SIZE)
    ax.set_title("Objects per image", fontsize=_TITLE_SIZE)
    ax.set_xlabel("annotations in the image", fontsize=_LABEL_SIZE + 1)
    ax.set_ylabel("% of images" if fractions else "images", fontsize=_LABEL_SIZE + 1)
    ax.tick_params(labelsize=_LABEL_SIZE)
    ax.legend(fontsize=_LABEL_SIZE)
    ax.grid(alpha=0.3, axis="y")
    ax.set_axisbelow(True)
    return fig


def _plot_object_sizes(files: list[FileStats], classes: list[str], aligned: list[dict]) -> Figure:
    fig = Figure(figsize=(15, 4.8), layout="constrained")
    bars_ax, abs_ax, rel_ax = fig.subplots(1, 3, width_ratios=(0.7, 1, 1))
    fractions = len(files) > 1
    width = 0.8 / len(files)
    for s, (f, a) in enumerate(zip(files, aligned)):
        counts = a["sizes"].sum(axis=0)
        shown = 100 * counts / max(counts.sum(), 1) if fractions else counts
        bars = bars_ax.bar(np.arange(3) - 0.4 + width * (s + 0.5), shown, width * 0.92, color=f"C{s}", label=f.name)
        bars_ax.bar_label(bars, labels=[f"{v:.0f}{'%' if fractions else ''}" for v in shown],
                          fontsize=_LABEL_SIZE - 1)
        weights = np.full(f.area.size, 100 / max(f.area.size, 1)) if fractions else None
        style = dict(histtype="step" if fractions else "stepfilled", linewidth=1.8, color=f"C{s}", alpha=0.8,
                     weights=weights, label=f.name)
        if f.area.size:
            abs_ax.hist(f.area, bins=_log_bins(np.concatenate([g.area for g in files])), **style)
            rel_ax.hist(100 * f.relative_area, bins=_log_bins(100 * np.concatenate([g.relative_area for g in files])),
                        **style)
    bars_ax.set_xticks(range(3), [f"{n}\n{r}" for n, r in zip(SIZE_NAMES, ("< 32²", "32²-96²", "≥ 96²"))],
                       fontsize=_LABEL_SIZE)
    bars_ax.set_title("COCO size classes (pixels)", fontsize=_TITLE_SIZE)
    for ax, title, xlabel in ((abs_ax, "Object area at the listed image size", "area in pixels (log scale)"),
                              (rel_ax, "Object area relative to its image", "% of the image area (log scale)")):
        ax.set_xscale("log")
        ax.set_title(title, fontsize=_TITLE_SIZE)
        ax.set_xlabel(xlabel, fontsize=_LABEL_SIZE + 1)
    for ax in (bars_ax, abs_ax, rel_ax):
        ax.set_ylabel("% of objects" if fractions else "objects", fontsize=_LABEL_SIZE + 1)
        ax.tick_params(labelsize=_LABEL_SIZE)
        ax.grid(alpha=0.3, axis="y")
    for limit in (SMALL, LARGE):
        abs_ax.axvline(limit, color="0.3", linestyle="--", linewidth=1)
    for limit, label in ((SMALL, " 32²"), (LARGE, " 96²")):
        abs_ax.text(limit, 0.97, label, transform=abs_ax.get_xaxis_transform(), va="top", fontsize=_LABEL_SIZE)
    if fractions:
        bars_ax.legend(fontsize=_LABEL_SIZE)
    return fig


def _log_bins(values: np.ndarray) -> np.ndarray:
    positive = values[values > 0]
    if positive.size == 0:
        return np.array([0.1, 1.0])
    lo, hi = positive.min(), positive.max()
    return np.geomspace(lo, hi * 1.0001 if hi > lo else lo * 2, 41)


def _plot_image_sizes(files: list[FileStats], classes: list[str], aligned: list[dict]) -> Figure:
    fig = Figure(figsize=(10, 7), layout="constrained")
    ax = fig.add_subplot()
    listing = []
    for s, f in enumerate(files):
        sizes = f.image_sizes.most_common()
        counts = np.array([n for _, n in sizes], np.float64)
        ax.scatter([w for (w, _), _ in sizes], [h for (_, h), _ in sizes], s=20 + 600 * counts / counts.max(),
                   alpha=0.5, color=f"C{s}", edgecolors="black", linewidths=0.5, label=f.name)
        shown = "\n".join(f"{w} x {h}: {n}" for (w, h), n in sizes[:8])
        more = f"\n({len(sizes) - 8} more sizes)" if len(sizes) > 8 else ""
        listing.append(f"{f.name}, most common:\n{shown}{more}")
    ax.text(1.02, 1.0, "\n\n".join(listing), transform=ax.transAxes, va="top", fontsize=_LABEL_SIZE,
            family="monospace")
    ax.set_title("Image sizes (marker area ~ number of images)", fontsize=_TITLE_SIZE)
    ax.set_xlabel("width (pixels)", fontsize=_LABEL_SIZE + 1)
    ax.set_ylabel("height (pixels)", fontsize=_LABEL_SIZE + 1)
    ax.tick_params(labelsize=_LABEL_SIZE)
    ax.grid(alpha=0.3)
    ax.margins(0.15)
    if len(files) > 1:
        ax.legend(fontsize=_LABEL_SIZE, loc="upper left")
    return fig


# --- summary ---------------------------------------------------------------------------------------------


def _summary(files: list[FileStats], classes: list[str], aligned: list[dict], plots: dict[str, str]) -> str:
    lines = ["# Dataset summary", "", "| file | images | without objects | objects | objects/image (mean, median, "
             "max) | crowd | classes | area unknown |", "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for f in files:
        per = f.objects_per_image
        stats = f"{per.mean():.2f}, {np.median(per):.0f}, {per.max()}" if per.size else "-"
        lines.append(f"| {f.name} | {f.num_images} | {int((per == 0).sum())} | {int(per.sum())} | {stats} | "
                     f"{f.crowd} | {len(f.classes)} | {len(f.no_area)} |")
    for f in files:
        if f.no_area:
            shown = ", ".join(str(i) for i in f.no_area[:10])
            lines.append(f"\n{f.name}: no usable area or segmentation for annotation ids {shown}"
                         f"{' ...' if len(f.no_area) > 10 else ''} (left out of the size and pixel statistics)")
    lines += ["", "## Classes", "",
              "Objects and images containing the class; pixel share = mean over images of the class's area "
              "fraction (unannotated: Background); sizes are COCO small/medium/large at the listed image size.", ""]
    head, rule = "| class |", "| --- |"
    for f in files:
        tag = f" ({f.name})" if len(files) > 1 else ""
        head += f" objects{tag} | images{tag} | pixel %{tag} | S / M / L{tag} |"
        rule += " ---: | ---: | ---: | ---: |"
    lines += [head, rule]
    order = np.argsort(-sum(a["objects"] for a in aligned), kind="stable")
    for k in order:
        row = f"| {classes[k]} |"
        for a in aligned:
            s, m, big = (int(v) for v in a["sizes"][k])
            row += f" {int(a['objects'][k])} | {int(a['images'][k])} | {100 * a['share'][k]:.3g} | {s} / {m} / {big} |"
        lines.append(row)
    row = "| *Background (unannotated)* |"
    for a in aligned:
        row += f" | | {100 * max(0.0, 1 - a['share'].sum()):.3g} | |"
    lines += [row, "", "## Plots", ""]
    for file_name, title in plots.items():
        lines += [f"### {title}", "", f"![{title}]({file_name})", ""]
    return "\n".join(lines)
