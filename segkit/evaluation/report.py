"""Per-class metric tables for the console and train.log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def format_table(metrics: Mapping[str, Any], columns: tuple[str, ...] = ("IoU", "Acc")) -> str:
    """Class rows with the given per-class columns in percent ('-' = class absent), then the means."""
    names = list(metrics[columns[0]])
    width = max(len("class"), *(len(n) for n in names))
    lines = [f"{'class':<{width}}  " + "  ".join(f"{c:>7}" for c in columns)]
    for name in names:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{_pct(metrics[c][name]):>7}" for c in columns))
    lines.append(" ".join(f"{key} {_pct(metrics.get(key))}" for key in ("mIoU", "mAcc", "aAcc")))
    return "\n".join(lines)
