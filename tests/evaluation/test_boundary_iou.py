"""Boundary IoU against a direct transcription of the paper's per-class mask_to_boundary (cv2.erode)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from segkit.evaluation.boundary_iou import boundary_band, boundary_counts, boundary_iou_from_counts, boundary_width
from segkit.evaluation.evaluator import SegEvaluator

C = 4
NAMES = ["bg", "a", "b", "c"]


def _mask_to_boundary(mask: np.ndarray, d: int) -> np.ndarray:
    """Cheng et al.'s reference: pad with zeros, erode d times with a 3x3 kernel, subtract."""
    h, w = mask.shape
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)[1 : h + 1, 1 : w + 1]
    return (mask - eroded).astype(bool)


def _reference_counts(pairs, ratio: float) -> np.ndarray:
    """Per class |G_d & P_d|, |G_d|, |P_d| summed over images, one class and one image at a time."""
    counts = np.zeros((3, C), np.int64)
    for pred, target in pairs:
        d = max(1, int(round(ratio * math.hypot(*target.shape))))
        valid = target != 255
        for c in range(C):
            g = _mask_to_boundary((target == c).astype(np.uint8), d) & valid
            p = _mask_to_boundary((pred == c).astype(np.uint8), d) & valid
            counts[:, c] += [np.sum(g & p), np.sum(g), np.sum(p)]
    return counts


def _blocky(rng, shape, classes, cell):
    coarse = rng.integers(0, classes, size=(shape[0] // cell + 1, shape[1] // cell + 1))
    return np.kron(coarse, np.ones((cell, cell), np.int64))[: shape[0], : shape[1]]


def _pairs(seed: int = 0):
    """Images of different sizes; class 3 is only ever predicted; ignore regions next to objects."""
    rng = np.random.default_rng(seed)
    pairs = []
    for shape in ((40, 52), (33, 33), (64, 20)):
        target = _blocky(rng, shape, 3, 7)
        target[:4, : shape[1] // 2] = 255
        pred = target.copy()
        pred[rng.random(shape) < 0.1] = rng.integers(0, C)
        pred[5:12, 5:15] = 3
        pairs.append((pred, target))
    return pairs


def test_counts_equal_the_per_class_erosion_reference_over_images_of_different_sizes():
    pairs = _pairs()
    ours = sum(boundary_counts(torch.from_numpy(p), torch.from_numpy(t), C, 255, 0.05) for p, t in pairs)
    np.testing.assert_array_equal(ours.numpy(), _reference_counts(pairs, 0.05))


def test_evaluator_reports_boundary_iou_with_the_absent_class_policy():
    pairs = _pairs(seed=1)
    ev = SegEvaluator(C + 1, [*NAMES, "never"], boundary_iou=True, boundary_dilation=0.05)
    plain = SegEvaluator(C + 1, [*NAMES, "never"])
    for pred, target in pairs:
        for evaluator in (ev, plain):
            evaluator.process(torch.from_numpy(pred)[None], torch.from_numpy(target)[None])
    m = ev.evaluate()
    inter, gt, pr = _reference_counts(pairs, 0.05)
    expected = inter / (gt + pr - inter)
    assert m["BoundaryIoU"]["c"] == 0.0  # only predicted: a real 0 that counts
    assert m["BoundaryIoU"]["never"] is None
    assert [m["BoundaryIoU"][n] for n in NAMES] == pytest.approx(expected.tolist())
    assert m["mBoundaryIoU"] == pytest.approx(expected.mean())
    mask_metrics = {k: v for k, v in m.items() if k not in ("BoundaryIoU", "mBoundaryIoU")}
    assert mask_metrics == plain.evaluate()  # the mask metrics are unchanged by it


def test_a_perfect_prediction_scores_one_and_the_band_follows_the_diagonal():
    target = torch.from_numpy(_blocky(np.random.default_rng(2), (30, 40), 3, 6))
    ev = SegEvaluator(3, ["x", "y", "z"], boundary_iou=True)
    ev.process(target[None], target[None])
    assert ev.evaluate()["mBoundaryIoU"] == 1.0
    assert boundary_width(512, 512) == 14 and boundary_width(64, 64) == 2 and boundary_width(5, 5) == 1


def test_band_marks_both_sides_of_an_edge_and_the_image_border():
    labels = torch.zeros(1, 9, 9, dtype=torch.long)
    labels[0, :, 5:] = 1
    band = boundary_band(labels, 1)[0]
    assert band[4, 4] and band[4, 5] and band[0, 2] and band[4, 8]
    assert not band[4, 2] and not band[4, 7]


def test_boundary_needs_image_shaped_inputs_and_a_sane_dilation():
    ev = SegEvaluator(2, ["a", "b"], boundary_iou=True)
    with pytest.raises(ValueError, match="Boundary IoU needs"):
        ev.process(torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="boundary_dilation"):
        SegEvaluator(2, ["a", "b"], boundary_iou=True, boundary_dilation=2.0)
    assert boundary_iou_from_counts(torch.zeros(3, 2), ["a", "b"]) == {
        "mBoundaryIoU": None, "BoundaryIoU": {"a": None, "b": None}}
