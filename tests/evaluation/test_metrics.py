from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from segkit.errors import SegkitError
from segkit.evaluation.metrics import (
    confusion_matrix,
    image_mious,
    iou_per_class,
    metrics_from_confusion,
    per_image_confusion,
)


def _pair_counts(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore: int) -> np.ndarray:
    """Reference matrix: count every (gt, pred) pair with its own boolean mask."""
    keep = target != ignore
    return np.array(
        [[np.sum(keep & (target == i) & (pred == j)) for j in range(num_classes)] for i in range(num_classes)]
    )


def test_confusion_matrix_counts_pairs_and_drops_ignored_pixels():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, size=(2, 7, 5))
    target[rng.random(target.shape) < 0.2] = 255
    pred = rng.integers(0, 4, size=target.shape)

    pred_t, target_t = torch.from_numpy(pred.copy()), torch.from_numpy(target.copy())
    cm = confusion_matrix(pred_t, target_t, 4)

    assert torch.equal(pred_t, torch.from_numpy(pred)) and torch.equal(target_t, torch.from_numpy(target))
    assert cm.dtype == torch.int64 and cm.shape == (4, 4)
    np.testing.assert_array_equal(cm.numpy(), _pair_counts(pred, target, 4, 255))
    assert cm.sum() == np.sum(target != 255)


def test_confusion_matrix_rows_are_ground_truth():
    target = torch.tensor([0, 0, 0, 1])
    pred = torch.tensor([1, 1, 0, 1])
    assert confusion_matrix(pred, target, 2).tolist() == [[1, 2], [0, 1]]


def test_uint8_inputs_with_255_ignore():
    target = torch.tensor([[0, 1, 255], [2, 2, 255]], dtype=torch.uint8)
    pred = torch.tensor([[0, 2, 1], [2, 1, 0]], dtype=torch.uint8)
    cm = confusion_matrix(pred, target, 3)
    assert cm.dtype == torch.int64
    assert cm.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]


def test_ignored_pixels_predictions_are_neither_counted_nor_checked():
    target = torch.tensor([1, 255, 255, 255])
    pred = torch.tensor([1, 0, 1, 99])
    assert confusion_matrix(pred, target, 2).tolist() == [[0, 0], [0, 1]]


def test_custom_ignore_index():
    target = torch.tensor([-1, 0, 1])
    pred = torch.tensor([1, 0, 0])
    assert confusion_matrix(pred, target, 2, ignore_index=-1).tolist() == [[1, 0], [1, 0]]


@pytest.mark.parametrize("bad", [3, 7, -2, 254])
def test_target_value_out_of_range_names_the_value(bad):
    target = torch.tensor([0, bad, 1])
    with pytest.raises(ValueError, match=rf"target value {bad} is outside \[0, 3\)"):
        confusion_matrix(torch.zeros(3, dtype=torch.long), target, 3)


def test_prediction_value_out_of_range_raises_and_is_a_segkit_error():
    with pytest.raises(SegkitError, match="prediction value 5"):
        confusion_matrix(torch.tensor([0, 5]), torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="prediction value -1"):
        confusion_matrix(torch.tensor([0, -1]), torch.tensor([0, 1]), 3)


def test_shape_dtype_mismatches_raise():
    with pytest.raises(ValueError, match="resize"):
        confusion_matrix(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="integer class indices"):
        confusion_matrix(torch.zeros(4), torch.zeros(4, dtype=torch.long), 2)


def test_all_pixels_ignored_gives_zero_matrix():
    cm = confusion_matrix(torch.tensor([0, 1]), torch.tensor([255, 255]), 3)
    assert cm.tolist() == [[0] * 3] * 3


# --- metrics_from_confusion -------------------------------------------------------------------------

NAMES = ["bg", "can", "paper", "glass"]
# rows = GT, cols = pred.  bg: GT 10, can: GT 5, paper: only predicted (never GT), glass: absent from both.
CM = np.array(
    [
        [8, 1, 1, 0],
        [1, 4, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
)


def test_hand_computed_metrics_and_absent_class_policy():
    m = metrics_from_confusion(CM, NAMES)

    # IoU = TP / (TP + FP + FN), each counted by hand from CM.
    iou_bg, iou_can, iou_paper = 8 / (8 + 1 + 2), 4 / (4 + 1 + 1), 0 / (0 + 1 + 0)
    assert m["IoU"] == pytest.approx({"bg": iou_bg, "can": iou_can, "paper": 0.0, "glass": None})
    assert m["IoU"]["glass"] is None
    # The only-predicted class counts (as 0) in mIoU; the absent class does not.
    assert m["mIoU"] == pytest.approx((iou_bg + iou_can + iou_paper) / 3)

    assert m["Acc"] == pytest.approx({"bg": 8 / 10, "can": 4 / 5, "paper": None, "glass": None})
    assert m["mAcc"] == pytest.approx((0.8 + 0.8) / 2)
    assert m["aAcc"] == pytest.approx(12 / 15)
    assert m["Precision"] == pytest.approx({"bg": 8 / 9, "can": 4 / 5, "paper": 0.0, "glass": None})
    dice = {"bg": 16 / (10 + 9), "can": 8 / (5 + 5), "paper": 0.0, "glass": None}
    assert m["Dice"] == pytest.approx(dice)
    assert m["mDice"] == pytest.approx((dice["bg"] + dice["can"]) / 3)
    assert m["fwIoU"] == pytest.approx(10 / 15 * iou_bg + 5 / 15 * iou_can)


def test_values_are_plain_floats_in_unit_interval_and_json_ready():
    m = metrics_from_confusion(torch.from_numpy(CM), NAMES)
    scalars = [m[k] for k in ("mIoU", "mAcc", "aAcc", "mDice", "fwIoU")]
    per_class = [v for k in ("IoU", "Acc", "Precision", "Dice") for v in m[k].values() if v is not None]
    assert all(type(v) is float and 0.0 <= v <= 1.0 for v in scalars + per_class)
    assert json.loads(json.dumps(m))["IoU"]["glass"] is None


def test_class_in_gt_but_never_predicted():
    m = metrics_from_confusion(np.array([[3, 0], [2, 0]]), ["a", "b"])
    assert m["IoU"]["b"] == 0.0 and m["Acc"]["b"] == 0.0 and m["Precision"]["b"] is None


def test_empty_matrix_gives_all_none():
    m = metrics_from_confusion(np.zeros((2, 2), dtype=np.int64), ["a", "b"])
    assert [m[k] for k in ("mIoU", "mAcc", "aAcc", "mDice", "fwIoU")] == [None] * 5
    assert m["IoU"] == {"a": None, "b": None}


def test_large_counts_stay_exact():
    big = 3 * 10**12
    m = metrics_from_confusion(np.array([[big, 1], [0, big]], dtype=np.int64), ["a", "b"])
    assert m["IoU"]["a"] == big / (big + 1)


def test_bad_matrix_or_names_raise():
    with pytest.raises(ValueError, match="3 class names"):
        metrics_from_confusion(np.zeros((2, 2)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="'a' appears twice"):
        metrics_from_confusion(np.zeros((2, 2)), ["a", "a"])
    with pytest.raises(ValueError, match="negative"):
        metrics_from_confusion(np.array([[1, -1], [0, 1]]), ["a", "b"])


# --- per-image matrices (for choosing images to show) ------------------------------------------------


def test_per_image_confusion_equals_one_matrix_per_image_and_sums_to_the_batch_matrix():
    rng = np.random.default_rng(3)
    target = rng.integers(0, 3, size=(3, 5, 6))
    target[rng.random(target.shape) < 0.2] = 255
    pred = rng.integers(0, 3, size=target.shape)
    pred_t, target_t = torch.from_numpy(pred), torch.from_numpy(target)

    cms = per_image_confusion(pred_t, target_t, 3)
    assert cms.shape == (3, 3, 3) and cms.dtype == torch.int64
    for b in range(3):
        np.testing.assert_array_equal(cms[b].numpy(), _pair_counts(pred[b], target[b], 3, 255))
    assert torch.equal(cms.sum(0), confusion_matrix(pred_t, target_t, 3))


def test_per_image_iou_and_miou_follow_the_absent_class_policy():
    # image 0: class 0 right on 2 of 3 pixels, class 1 only predicted, class 2 absent; image 1: all ignored.
    target = torch.tensor([[[0, 0, 0, 255]], [[255, 255, 255, 255]]])
    pred = torch.tensor([[[0, 0, 1, 2]], [[1, 1, 1, 1]]])
    cms = per_image_confusion(pred, target, 3)
    ious = iou_per_class(cms)
    assert ious[0, :2].tolist() == [2 / 3, 0.0] and ious[0, 2].isnan()
    assert ious[1].isnan().all()
    assert image_mious(cms) == [pytest.approx(1 / 3), None]
