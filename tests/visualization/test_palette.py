from __future__ import annotations

import numpy as np
import pytest

from segkit.visualization.palette import IGNORE_COLOR, class_colors, colorize, draw_legend, overlay


def test_colours_are_fixed_per_index_distinct_and_background_black():
    colors = class_colors(60)
    assert colors.shape == (60, 3) and colors.dtype == np.uint8
    assert colors[0].tolist() == [0, 0, 0]
    assert np.array_equal(class_colors(12), colors[:12])  # class k looks the same whatever the class count
    assert len({tuple(c) for c in colors}) == 60
    assert tuple(IGNORE_COLOR) not in {tuple(c) for c in colors}
    gaps = np.abs(colors[1:13, None].astype(int) - colors[None, 1:13].astype(int)).sum(-1)
    assert gaps[~np.eye(12, dtype=bool)].min() > 60  # the first classes are clearly apart


def test_colorize_and_overlay():
    colors = class_colors(3)
    mask = np.array([[0, 1], [2, 255]], np.uint8)
    assert colorize(mask, colors).tolist() == [[[0, 0, 0], colors[1].tolist()], [colors[2].tolist(),
                                                                                 list(IGNORE_COLOR)]]
    with pytest.raises(ValueError, match="class 7"):
        colorize(np.array([[7]], np.uint8), colors)
    image = np.full((2, 2, 3), 100, np.uint8)
    out = overlay(image, mask, colors, alpha=0.5)
    assert out[0, 0].tolist() == [100, 100, 100]  # Background shows the image
    assert out[0, 1].tolist() == np.round((100 + colors[1].astype(float)) / 2).astype(int).tolist()
    assert not np.array_equal(out[1, 1], image[1, 1])


def test_legend_lists_names_in_columns_when_height_is_limited():
    names = [f"class {i}" for i in range(30)]
    tall = draw_legend(names, class_colors(30))
    wrapped = draw_legend(names, class_colors(30), max_height=200)
    assert tall.dtype == np.uint8 and tall.shape[0] > 300
    assert wrapped.shape[0] <= 200 and wrapped.shape[1] > tall.shape[1]
    swatch_rows = np.flatnonzero((tall == class_colors(30)[5]).all(-1).any(1))
    assert swatch_rows.size  # the swatch is drawn in its class colour
    with pytest.raises(ValueError, match="2 names but 1"):
        draw_legend(["a", "b"], class_colors(1))
