from __future__ import annotations

import numpy as np

from segkit.visualization.figures import confusion_figure, figure_to_array, iou_bar_figure

NAMES = ["Background", "Paper", "Metal"]


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_confusion_figure_is_row_normalised_with_names_and_marks_classes_without_gt():
    cm = np.array([[90, 10, 0], [1, 3, 0], [0, 5, 0]])
    cm[2] = 0  # Metal never in the ground truth
    fig = confusion_figure(cm, NAMES)
    assert sorted(_texts(fig)) == sorted(["90", "10", "25", "75"])  # percentages of each GT row
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert [t.get_text() for t in ax.get_yticklabels()][2] == "Metal (no GT)"
    picture = figure_to_array(fig)
    assert picture.dtype == np.uint8 and picture.shape[2] == 3 and min(picture.shape[:2]) > 300


def test_iou_bars_keep_class_order_and_label_absent_classes():
    fig = iou_bar_figure({"Background": 0.9, "Paper": None, "Metal": 0.25}, miou=0.575)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == NAMES
    assert _texts(fig) == ["90.0", "absent", "25.0", "mIoU 57.5"]
