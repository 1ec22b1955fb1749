"""Fixed class colours, mask colouring, overlays and a legend image, all as uint8 RGB numpy arrays.

Every picture segkit draws (browse_dataset, TensorBoard panels) colours class ``k`` the same way whatever
the number of classes, so a colour learned in one plot means the same class in the next. Background
(class 0) is black, the ignore index is grey (hatched in overlays). Arrays rather than matplotlib figures
keep this usable inside training loops and DataLoader workers.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np

IGNORE_COLOR = (128, 128, 128)
MAX_COLORS = 256

# (hue in degrees, saturation, value) of classes 1..12: far-apart hues first, none dark or grey.
_FIRST = (
    (0, 0.85, 0.90), (215, 0.75, 0.95), (120, 0.70, 0.75), (32, 0.95, 1.00), (285, 0.60, 0.80),
    (55, 0.85, 1.00), (180, 0.90, 0.85), (320, 0.65, 1.00), (25, 0.75, 0.60), (90, 0.65, 0.95),
    (250, 0.45, 1.00), (160, 0.80, 0.65),
)
_GOLDEN = 0.381966  # hue step of later classes: consecutive colours land far apart on the hue circle
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _build_table() -> np.ndarray:
    table = np.zeros((MAX_COLORS, 3), np.uint8)
    for k in range(1, MAX_COLORS):
        if k <= len(_FIRST):
            hue, sat, val = _FIRST[k - 1]
            hue /= 360.0
        else:
            step = k - len(_FIRST)
            hue = (0.05 + step * _GOLDEN) % 1.0
            sat, val = (0.9, 0.55, 0.75)[step % 3], (0.95, 1.0, 0.7)[(step // 3) % 3]
        table[k] = np.round(np.array(colorsys.hsv_to_rgb(hue, sat, val)) * 255)
    table[255] = IGNORE_COLOR
    return table


_TABLE = _build_table()


def class_colors(num_classes: int) -> np.ndarray:
    """``(num_classes, 3)`` uint8 RGB; row 0 (Background) black; row ``k`` is the same for any ``num_classes``."""
    if not 0 < num_classes <= 255:
        raise ValueError(f"num_classes must be in 1..255, got {num_classes}")
    return _TABLE[:num_classes].copy()


def colorize(mask: np.ndarray, colors: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """``(H, W)`` class mask -> ``(H, W, 3)`` RGB; ignore pixels grey; an unknown class index is an error."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(colors)] = colors
    lut[ignore_index] = IGNORE_COLOR
    unknown = mask[(mask >= len(colors)) & (mask != ignore_index)]
    if unknown.size:
        raise ValueError(f"mask holds class {int(unknown.max())} but only {len(colors)} colours were given")
    return lut[mask]


def overlay(image: np.ndarray, mask: np.ndarray, colors: np.ndarray, alpha: float = 0.5,
            ignore_index: int = 255) -> np.ndarray:
    """Class colours blended over ``image`` (RGB uint8); Background shows the image, ignore is hatched grey."""
    painted = colorize(mask, colors, ignore_index)
    ignored = mask == ignore_index
    if ignored.any():
        rows, cols = np.indices(mask.shape)
        stripes = ((rows + cols) // 4) % 2 == 0
        painted[ignored & stripes] = (235, 235, 235)
    out = image.astype(np.float32)
    blend = (mask != 0)[..., None]
    alphas = np.where(ignored[..., None], 0.7, alpha)
    out = np.where(blend, out * (1 - alphas) + painted * alphas, out)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def draw_legend(names: Sequence[str], colors: np.ndarray | Sequence[Sequence[int]],
                max_height: int | None = None, font_scale: float = 0.5) -> np.ndarray:
    """A white RGB image listing ``names`` with their colour swatches, in columns if ``max_height`` is given.

    ``colors[i]`` is the colour of ``names[i]``: pass the rows of the classes you want listed.
    """
    if len(names) != len(colors):
        raise ValueError(f"{len(names)} names but {len(colors)} colours")
    row = int(round(44 * font_scale))
    pad = row // 3
    swatch = row - 2 * (row // 6)
    per_column = len(names) if not max_height else max(1, (max_height - 2 * pad) // row)
    columns = [list(range(s, min(s + per_column, len(names)))) for s in range(0, len(names), per_column)] or [[]]
    widths = [max((cv2.getTextSize(names[i], _FONT, font_scale, 1)[0][0] for i in col), default=0)
              for col in columns]
    col_widths = [swatch + pad + w + 2 * pad for w in widths]
    height = 2 * pad + row * max(len(col) for col in columns)
    canvas = np.full((height, sum(col_widths) + pad, 3), 255, np.uint8)
    x = pad
    for col, width in zip(columns, col_widths):
        for r, i in enumerate(col):
            y = pad + r * row + row // 6
            color = tuple(int(c) for c in colors[i])
            cv2.rectangle(canvas, (x, y), (x + swatch - 1, y + swatch - 1), color, -1)
            cv2.rectangle(canvas, (x, y), (x + swatch - 1, y + swatch - 1), (90, 90, 90), 1)
            baseline = y + swatch - max(1, swatch // 6)
            cv2.putText(canvas, names[i], (x + swatch + pad, baseline), _FONT, font_scale, (20, 20, 20), 1,
                        cv2.LINE_AA)
        x += width
    return canvas
