"""Per-class metric tables for the console and train.log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MEANS = ("mIoU", "mAcc", "aAcc", "mDice", "fwIoU", "mBoundaryIoU")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def format_table(metrics: Mapping[str, Any], columns: tuple[str, ...] = ("IoU", "Acc")) -> str:
    """Class rows with the given per-class columns in percent ('-' = class absent), then the means present."""
    names = list(metrics[columns[0]])
    width = max(len("class"), *(len(n) for n in names))
    widths = [max(7, len(c)) for c in columns]
    lines = [f"{'class':<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(columns, widths))]
    for name in names:
        cells = (f"{_pct(metrics[c][name]):>{w}}" for c, w in zip(columns, widths))
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    lines.append(" ".join(f"{key} {_pct(metrics[key])}" for key in MEANS if key in metrics))
    return "\n".join(lines)


def table_columns(metrics: Mapping[str, Any]) -> tuple[str, ...]:
    """Every per-class group the metrics hold, in reading order (Boundary IoU only when it was computed)."""
    return tuple(c for c in ("IoU", "Acc", "Precision", "Dice", "BoundaryIoU") if c in metrics)
