"""Composing uint8 RGB pictures: nearest-neighbour scaling, text strips, rows and columns with gaps.

TensorBoard shows an image at its own pixel size (or shrunk to the card), so a 64 px validation crop would be a
smear; every panel cell is brought to a legible height here, with integer nearest-neighbour factors so class
boundaries stay pixel-exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
TEXT = (20, 20, 20)
GAP = 6


def cell_scale(height: int, min_height: int = 256, max_height: int = 512) -> float:
    """Factor that brings an image of ``height`` into ``[min_height, max_height]``: integer when enlarging."""
    if height < min_height:
        return float(math.ceil(min_height / height))
    if height > max_height:
        return max_height / height
    return 1.0


def rescale(picture: np.ndarray, scale: float, smooth: bool = False) -> np.ndarray:
    """Resize by ``scale``: nearest neighbour (masks, enlarged photos) unless ``smooth`` and shrinking."""
    if scale == 1.0:
        return picture
    height, width = picture.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if smooth and scale < 1 else cv2.INTER_NEAREST
    return cv2.resize(picture, size, interpolation=interpolation)


def text_strip(lines: Sequence[str], width: int, font_scale: float = 0.55, center: bool = True) -> np.ndarray:
    """White strip ``width`` wide holding ``lines`` of dark text; too-long lines are cut with '...'."""
    line_height = int(round(34 * font_scale))
    strip = np.full((line_height * len(lines) + 8, width, 3), 255, np.uint8)
    for row, line in enumerate(lines):
        line = _fit(line, width - 8, font_scale)
        text_width = cv2.getTextSize(line, FONT, font_scale, 1)[0][0]
        x = (width - text_width) // 2 if center else 4
        y = 4 + line_height * (row + 1) - int(round(8 * font_scale))
        cv2.putText(strip, line, (x, y), FONT, font_scale, TEXT, 1, cv2.LINE_AA)
    return strip


def _fit(line: str, width: int, font_scale: float) -> str:
    if cv2.getTextSize(line, FONT, font_scale, 1)[0][0] <= width:
        return line
    while line and cv2.getTextSize(line + "...", FONT, font_scale, 1)[0][0] > width:
        line = line[:-1]
    return line + "..."


def _stack(pictures: Sequence[np.ndarray], axis: int, gap: int) -> np.ndarray:
    """Pictures along ``axis`` (1: side by side, 0: one above the other), aligned top-left, on white."""
    across = 1 - axis
    shape = [0, 0, 3]
    shape[axis] = sum(p.shape[axis] for p in pictures) + gap * (len(pictures) - 1)
    shape[across] = max(p.shape[across] for p in pictures)
    canvas = np.full(shape, 255, np.uint8)
    offset = 0
    for picture in pictures:
        place = [slice(None, picture.shape[0]), slice(None, picture.shape[1])]
        place[axis] = slice(offset, offset + picture.shape[axis])
        canvas[tuple(place)] = picture
        offset += picture.shape[axis] + gap
    return canvas


def hstack(pictures: Sequence[np.ndarray], gap: int = GAP) -> np.ndarray:
    """Side by side, top-aligned, on white, ``gap`` pixels apart."""
    return _stack(pictures, axis=1, gap=gap)


def vstack(pictures: Sequence[np.ndarray], gap: int = GAP) -> np.ndarray:
    """One above the other, left-aligned, on white, ``gap`` pixels apart."""
    return _stack(pictures, axis=0, gap=gap)


def border(picture: np.ndarray, width: int = GAP) -> np.ndarray:
    """A white margin all round, so panels do not touch the edge of the TensorBoard card."""
    return cv2.copyMakeBorder(picture, width, width, width, width, cv2.BORDER_CONSTANT, value=WHITE)


def captioned(picture: np.ndarray, lines: Sequence[str], font_scale: float = 0.55) -> np.ndarray:
    """``picture`` under a centred caption of its own width."""
    return vstack([text_strip(lines, picture.shape[1], font_scale), picture], gap=0)
