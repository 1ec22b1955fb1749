"""The pictures that say which class fails where, as uint8 RGB arrays (TensorBoard, ``test.py --show-dir``).

- :func:`sample_panel`: image | ground truth | prediction | errors | confidence, with a colour legend.
- :func:`class_panel`: for one class, its true positives, false positives and false negatives over several
  images, so a class that is always missed (FN) looks different from one that bleeds into others (FP).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from segkit.visualization.layout import (
    FONT,
    TEXT,
    WHITE,
    border,
    captioned,
    cell_scale,
    hstack,
    rescale,
    text_strip,
    vstack,
)
from segkit.visualization.palette import IGNORE_COLOR, class_colors, colorize, draw_legend

ERROR_COLOR = (235, 30, 30)
# Green / magenta / yellow stay apart for red-green colour-blind readers too.
TP_COLOR = (0, 200, 80)
FP_COLOR = (235, 0, 210)
FN_COLOR = (255, 200, 0)
_HATCH = (235, 235, 235)


@dataclass
class PanelImage:
    """One evaluated image, already on the CPU: what every panel is drawn from."""

    name: str  # shown in captions, e.g. the COCO file_name
    image: np.ndarray  # (H, W, 3) uint8 RGB, before normalisation
    gt: np.ndarray  # (H, W) class indices, ignore_index where unlabelled
    pred: np.ndarray  # (H, W) class indices
    confidence: np.ndarray | None = None  # (H, W) max softmax probability in [0, 1]


def _dimmed(image: np.ndarray) -> np.ndarray:
    """Grey, darkened copy of the photo: context for coloured marks without competing with them."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) * 0.4 + 20  # <= 122: below any mark
    return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)


def _hatch(canvas: np.ndarray, region: np.ndarray) -> None:
    """Grey with light diagonal stripes: 'ignored' reads differently from any class or mark colour."""
    rows, cols = np.indices(region.shape)
    stripes = ((rows + cols) // 3) % 2 == 0
    canvas[region] = IGNORE_COLOR
    canvas[region & stripes] = _HATCH


def error_map(image: np.ndarray, gt: np.ndarray, pred: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """Wrong pixels red over the dimmed image; ignored pixels hatched (they are never errors)."""
    out = _dimmed(image)
    ignored = gt == ignore_index
    out[(pred != gt) & ~ignored] = ERROR_COLOR
    _hatch(out, ignored)
    return out


def confidence_map(confidence: np.ndarray) -> np.ndarray:
    """Max softmax probability as viridis colours: dark = unsure, yellow = sure."""
    levels = np.clip(np.round(confidence * 255), 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)


def class_outcome_map(image: np.ndarray, gt: np.ndarray, pred: np.ndarray, class_index: int,
                      ignore_index: int = 255) -> np.ndarray:
    """TP / FP / FN pixels of one class over the dimmed image; ignored pixels are not judged (hatched)."""
    out = _dimmed(image)
    ignored = gt == ignore_index
    is_gt, is_pred = (gt == class_index) & ~ignored, (pred == class_index) & ~ignored
    out[is_gt & is_pred] = TP_COLOR
    out[~is_gt & is_pred] = FP_COLOR
    out[is_gt & ~is_pred] = FN_COLOR
    _hatch(out, ignored)
    return out


def _confidence_bar(width: int = 150, margin: int = 12) -> np.ndarray:
    """The viridis scale with 0 / 0.5 / 1 under its left end, middle and right end."""
    ramp = np.repeat(np.linspace(0, 1, width, dtype=np.float32)[None], 14, axis=0)
    bar = cv2.copyMakeBorder(confidence_map(ramp), 0, 0, margin, margin, cv2.BORDER_CONSTANT, value=WHITE)
    ticks = np.full((20, bar.shape[1], 3), 255, np.uint8)
    for value, label in ((0.0, "0"), (0.5, "0.5"), (1.0, "1")):
        text_width = cv2.getTextSize(label, FONT, 0.45, 1)[0][0]
        x = margin + round(value * (width - 1)) - text_width // 2
        cv2.putText(ticks, label, (x, 15), FONT, 0.45, TEXT, 1, cv2.LINE_AA)
    return vstack([text_strip(["confidence"], bar.shape[1], font_scale=0.45), bar, ticks], gap=0)


def _hatched_ignore_swatch(legend: np.ndarray) -> np.ndarray:
    """draw_legend paints the 'ignored' swatch solid grey; hatch it like the pixels it stands for, so a grey
    object in the darkened photo is not read as ignored."""
    solid = np.all(legend == IGNORE_COLOR, axis=2).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(solid)
    if count > 1:  # the swatch is the largest solid-grey block; anti-aliased text pixels are specks
        _hatch(legend, labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])))
    return legend


def _legend(class_names: Sequence[str], height: int) -> np.ndarray:
    colors = class_colors(len(class_names))
    classes = draw_legend(list(class_names), colors, max_height=max(height, 60))
    marks = draw_legend(["error", "ignored"], np.array([ERROR_COLOR, IGNORE_COLOR], np.uint8))
    return vstack([classes, _hatched_ignore_swatch(marks), _confidence_bar()], gap=2)


def _cells(item: PanelImage, min_height: int, max_height: int) -> tuple[float, np.ndarray, np.ndarray]:
    scale = cell_scale(item.gt.shape[0], min_height, max_height)
    return scale, rescale(item.image, scale, smooth=True), rescale(np.ascontiguousarray(item.gt), scale)


def sample_panel(item: PanelImage, class_names: Sequence[str], title: str = "", ignore_index: int = 255,
                 min_height: int = 256, max_height: int = 512) -> np.ndarray:
    """image | ground truth | prediction | errors | confidence, labelled columns and a legend on the right.

    Small images are enlarged by an integer nearest-neighbour factor to at least ``min_height`` pixels.
    ``item.confidence`` must be set.
    """
    if item.confidence is None:
        raise ValueError(f"{item.name}: a sample panel needs the confidence map")
    scale, image, gt = _cells(item, min_height, max_height)
    pred = rescale(np.ascontiguousarray(item.pred), scale)
    colors = class_colors(len(class_names))
    gt_colored = colorize(gt, colors, ignore_index)
    _hatch(gt_colored, gt == ignore_index)
    cells = [
        (image, "image"),
        (gt_colored, "ground truth"),
        (colorize(pred, colors, ignore_index), "prediction"),
        (error_map(image, gt, pred, ignore_index), "errors (red)"),
        (confidence_map(rescale(item.confidence.astype(np.float32), scale)), "confidence"),
    ]
    row = hstack([captioned(cell, [label]) for cell, label in cells]
                 + [captioned(_legend(class_names, image.shape[0]), ["legend"])])
    title_strip = text_strip([title or item.name], row.shape[1], font_scale=0.6, center=False)
    return border(vstack([title_strip, row], gap=2))


def class_iou(gt: np.ndarray, pred: np.ndarray, class_index: int, ignore_index: int = 255) -> float | None:
    """IoU of one class in one image (None when it is in neither map); for captions only."""
    valid = gt != ignore_index
    is_gt, is_pred = (gt == class_index) & valid, (pred == class_index) & valid
    union = int(np.count_nonzero(is_gt | is_pred))
    return int(np.count_nonzero(is_gt & is_pred)) / union if union else None


def class_panel(items: Sequence[PanelImage], class_index: int, class_names: Sequence[str],
                ignore_index: int = 255, min_height: int = 256, max_height: int = 384) -> np.ndarray:
    """One class's TP / FP / FN over each of ``items``, side by side, each captioned with its IoU there."""
    if not items:
        raise ValueError(f"no images given for the panel of class {class_names[class_index]!r}")
    tiles = []
    for item in items:
        scale, image, gt = _cells(item, min_height, max_height)
        pred = rescale(np.ascontiguousarray(item.pred), scale)
        iou = class_iou(item.gt, item.pred, class_index, ignore_index)
        shown = "-" if iou is None else f"{100 * iou:.1f}%"
        tiles.append(captioned(class_outcome_map(image, gt, pred, class_index, ignore_index),
                               [item.name, f"IoU {shown}"], font_scale=0.5))
    row = hstack(tiles)
    key = _hatched_ignore_swatch(draw_legend(["true positive", "false positive", "false negative", "ignored"],
                                             np.array([TP_COLOR, FP_COLOR, FN_COLOR, IGNORE_COLOR], np.uint8),
                                             max_height=30))
    heading = f"class: {class_names[class_index]}"
    needed = cv2.getTextSize(heading, FONT, 0.6, 1)[0][0] + 24
    title = text_strip([heading], max(row.shape[1] - key.shape[1], needed), font_scale=0.6, center=False)
    return border(vstack([hstack([title, key]), row], gap=2))
