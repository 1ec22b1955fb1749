from __future__ import annotations

import cv2
import numpy as np
import pytest

from segkit.visualization.layout import cell_scale, hstack, rescale, text_strip, vstack
from segkit.visualization.palette import IGNORE_COLOR, class_colors, colorize
from segkit.visualization.panels import (
    ERROR_COLOR,
    FN_COLOR,
    FP_COLOR,
    TP_COLOR,
    PanelImage,
    class_iou,
    class_outcome_map,
    class_panel,
    confidence_map,
    error_map,
    sample_panel,
)

NAMES = ["Background", "Paper", "Metal"]


def _item(size: int = 64) -> PanelImage:
    gt = np.zeros((size, size), np.uint8)
    gt[8:24, 8:24] = 1
    gt[40:56, 40:56] = 2
    gt[:4, :4] = 255
    pred = gt.copy()
    pred[:4, :4] = 2  # anything may be predicted on ignored pixels
    pred[8:24, 8:16] = 0  # half of the Paper square missed
    pred[30:34, 30:34] = 1  # Paper predicted on Background
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    confidence = np.linspace(0, 1, size * size, dtype=np.float32).reshape(size, size)
    return PanelImage("val/0001.jpg", image, gt, pred, confidence)


def test_small_images_are_enlarged_by_an_integer_nearest_factor():
    assert cell_scale(64) == 4.0 and cell_scale(100) == 3.0 and cell_scale(300) == 1.0
    assert cell_scale(1024) == 0.5
    mask = np.array([[0, 1], [2, 0]], np.uint8)
    assert rescale(mask, 3.0).tolist() == np.kron(mask, np.ones((3, 3), np.uint8)).tolist()


def test_error_map_marks_wrong_pixels_and_never_ignored_ones():
    item = _item()
    out = error_map(item.image, item.gt, item.pred)
    assert out[10, 10].tolist() == list(ERROR_COLOR)  # missed Paper
    assert out[31, 31].tolist() == list(ERROR_COLOR)  # false Paper
    assert out[20, 20].tolist() != list(ERROR_COLOR)  # right
    ignored = {tuple(px) for px in out[:4, :4].reshape(-1, 3)}
    assert tuple(ERROR_COLOR) not in ignored and tuple(IGNORE_COLOR) in ignored


def test_class_outcome_map_colours_tp_fp_fn_of_one_class_only():
    item = _item()
    out = class_outcome_map(item.image, item.gt, item.pred, class_index=1)
    assert out[10, 20].tolist() == list(TP_COLOR)
    assert out[31, 31].tolist() == list(FP_COLOR)
    assert out[10, 10].tolist() == list(FN_COLOR)
    marks = {tuple(TP_COLOR), tuple(FP_COLOR), tuple(FN_COLOR)}
    assert tuple(out[48, 48]) not in marks  # class 2 is right and not this panel's business
    assert class_iou(item.gt, item.pred, 1) == pytest.approx(128 / (256 + 16))
    assert class_iou(item.gt, item.pred, 0, ignore_index=255) is not None


def test_confidence_map_runs_dark_to_bright():
    ramp = confidence_map(np.array([[0.0, 1.0]], np.float32))
    assert ramp[0, 0].sum() < ramp[0, 1].sum()


def test_sample_panel_is_legible_and_holds_the_five_columns_and_the_legend():
    item = _item(64)
    panel = sample_panel(item, NAMES, title="worst #1")
    assert panel.dtype == np.uint8 and panel.ndim == 3
    assert panel.shape[0] >= 256 + 40 and panel.shape[1] >= 5 * 256
    # The ground-truth column is the mask enlarged 4x in class colours, pixel for pixel (ignored: hatched).
    big = rescale(item.gt, 4.0)
    expected = colorize(big, class_colors(3))
    labelled = np.repeat((big != 255)[..., None], 3, axis=2).astype(np.uint8)
    match = cv2.matchTemplate(panel, expected, cv2.TM_SQDIFF, mask=labelled)
    assert match.min() == 0
    with pytest.raises(ValueError, match="confidence"):
        sample_panel(PanelImage("x", item.image, item.gt, item.pred), NAMES)


def test_class_panel_tiles_the_images_side_by_side():
    items = [_item(64), _item(32)]
    panel = class_panel(items, 1, NAMES)
    assert panel.shape[1] >= 2 * 256 and panel.shape[0] >= 256
    for color in (TP_COLOR, FP_COLOR, FN_COLOR):
        assert (panel.reshape(-1, 3) == color).all(axis=1).sum() > 100
    with pytest.raises(ValueError, match="no images"):
        class_panel([], 1, NAMES)


def test_layout_helpers_pad_on_white_and_cut_long_text():
    a, b = np.zeros((2, 3, 3), np.uint8), np.zeros((4, 1, 3), np.uint8)
    row = hstack([a, b], gap=2)
    assert row.shape == (4, 6, 3) and row[3, 0].tolist() == [255, 255, 255]
    assert vstack([a, b], gap=1).shape == (7, 3, 3)
    strip = text_strip(["a very long caption " * 10], width=80)
    assert strip.shape[1] == 80 and (strip < 128).any()
