from __future__ import annotations

from segkit.evaluation.report import format_table, table_columns

METRICS = {
    "mIoU": 0.5, "mAcc": 0.75, "aAcc": 0.8, "mDice": 0.6, "fwIoU": 0.7, "mBoundaryIoU": 0.25,
    "IoU": {"Background": 0.9, "Plastic bag": None},
    "Acc": {"Background": 0.95, "Plastic bag": None},
    "Precision": {"Background": 0.9, "Plastic bag": None},
    "Dice": {"Background": 0.94, "Plastic bag": None},
    "BoundaryIoU": {"Background": 0.25, "Plastic bag": None},
}


def test_table_lists_every_group_aligned_with_absent_classes_as_dash_and_the_means():
    columns = table_columns(METRICS)
    assert columns == ("IoU", "Acc", "Precision", "Dice", "BoundaryIoU")
    lines = format_table(METRICS, columns).splitlines()
    assert lines[0].split() == ["class", *columns]
    assert lines[1].split() == ["Background", "90.00", "95.00", "90.00", "94.00", "25.00"]
    assert lines[2].endswith("-") and lines[2].count("-") == 5
    assert len({len(line) for line in lines[:3]}) == 1  # columns line up, even under "BoundaryIoU"
    assert lines[3] == "mIoU 50.00 mAcc 75.00 aAcc 80.00 mDice 60.00 fwIoU 70.00 mBoundaryIoU 25.00"


def test_without_boundary_iou_neither_column_nor_mean_appear():
    metrics = {k: v for k, v in METRICS.items() if "Boundary" not in k}
    assert table_columns(metrics) == ("IoU", "Acc", "Precision", "Dice")
    assert "Boundary" not in format_table(metrics)
