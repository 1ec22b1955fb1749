"""Matplotlib (Agg) figures of a whole split: the row-normalised confusion matrix and per-class IoU bars.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state), so they can be made in a
training process without a display and without leaking open figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from segkit.visualization.palette import class_colors


def confusion_figure(cm: torch.Tensor | np.ndarray, class_names: Sequence[str], title: str = "") -> Figure:
    """Rows = ground truth normalised to 100%, so each row shows where that class's pixels went.

    Cells hold the percentage (blank below 0.5%); a class with no ground-truth pixels has an empty row,
    marked "(no GT)" on its label.
    """
    counts = np.asarray(cm.cpu().numpy() if isinstance(cm, torch.Tensor) else cm, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    rows = np.divide(counts, totals, out=np.full_like(counts, np.nan), where=totals > 0) * 100
    n = len(class_names)
    side = max(4.5, 0.55 * n + 2.5)
    fig = Figure(figsize=(side + 1.2, side), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shown = ax.imshow(np.ma.masked_invalid(rows), cmap="Blues", vmin=0, vmax=100, aspect="auto")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03, label="% of the ground-truth class's pixels")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", rotation_mode="anchor")
    ylabels = [name if totals[i, 0] > 0 else f"{name} (no GT)" for i, name in enumerate(class_names)]
    ax.set_yticks(range(n), ylabels)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth", labelpad=8)
    ax.set_title(title or "confusion matrix (row-normalised)")
    font = max(7.0, 12.0 - 0.3 * n)
    for i in range(n):
        for j in range(n):
            value = rows[i, j]
            if np.isfinite(value) and value >= 0.5:
                color = "white" if value > 55 else "black"
                ax.text(j, i, f"{value:.0f}" if value >= 9.95 else f"{value:.1f}", ha="center", va="center",
                        fontsize=font, color=color)
    return fig


def iou_bar_figure(iou: Mapping[str, float | None], miou: float | None = None, title: str = "") -> Figure:
    """Horizontal bars in class order (stable across validations), each in its class colour; '-' = absent."""
    names = list(iou)
    values = [iou[name] for name in names]
    colors = class_colors(len(names)) / 255.0
    fig = Figure(figsize=(7.5, max(3.0, 0.38 * len(names) + 1.3)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    positions = np.arange(len(names))
    ax.barh(positions, [100 * v if v is not None else 0 for v in values], color=colors, edgecolor="0.3")
    for y, value in zip(positions, values):
        label = "absent" if value is None else f"{100 * value:.1f}"
        ax.text(101 if value is None else 100 * value + 1, y, label, va="center", fontsize=9,
                color="0.4" if value is None else "black")
    if miou is not None:
        ax.axvline(100 * miou, color="0.2", linestyle="--", linewidth=1)
        ax.text(100 * miou, -0.9, f"mIoU {100 * miou:.1f}", ha="center", fontsize=9)
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 112)
    ax.set_ylim(len(names) - 0.5, -1.4)
    ax.set_xlabel("IoU (%)")
    ax.set_title(title or "per-class IoU")
    return fig


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render to ``(H, W, 3)`` uint8 RGB (for PNG files; TensorBoard takes the figure itself)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
