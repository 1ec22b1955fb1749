"""Pseudo-label thresholds: histograms of the float16 doubt 1 - p, class-balanced (CBST) thresholds, min-area."""

import numpy as np
import pytest

from segkit.inference.confidence import (
    BIN_VALUES,
    BINS,
    ConfidenceHistogram,
    confidence_of,
    float16_doubt,
    pseudo_mask,
    remove_small_regions,
)

DOUBTS = np.arange(BINS, dtype=np.uint16).view(np.float16)  # every bin's float16 doubt


def distinct_doubts(low: float, high: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` different float16 doubts whose confidence lies in [low, high], shuffled."""
    return rng.permutation(DOUBTS[(BIN_VALUES >= low) & (BIN_VALUES <= high)])[:count]


def crafted(rng: np.random.Generator):
    """Class 1 (common, sure): 150 pixels in [0.92, 0.999]; class 2 (rare, unsure): 40 pixels in [0.40, 0.70];
    class 0: 410 pixels in [0.5, 1.0]. Every confidence distinct within its class. Returns labels and doubts."""
    labels = np.concatenate([np.full(150, 1), np.full(40, 2), np.full(410, 0)]).astype(np.uint8)
    doubt = np.concatenate([distinct_doubts(0.92, 0.999, 150, rng), distinct_doubts(0.40, 0.70, 40, rng),
                            distinct_doubts(0.5, 1.0, 410, rng)])
    order = rng.permutation(labels.size)
    return labels[order].reshape(20, 30), doubt[order].reshape(20, 30)


def test_bins_are_every_float16_doubt_from_0_to_1_in_order():
    assert BINS == 15361 and BIN_VALUES[0] == 1.0 and BIN_VALUES[-1] == 0.0
    assert np.all(np.diff(BIN_VALUES) < 0)  # bin 0 is the surest
    histogram = ConfidenceHistogram(2)
    doubt = np.array([[1.0, 0.5, 0.0, 0.5]], np.float16)
    histogram.add(np.array([[0, 1, 1, 1]], np.uint8), doubt)
    assert histogram.predicted.tolist() == [1, 3]
    assert histogram.counts[1, np.flatnonzero(BIN_VALUES == 0.5)[0]] == 2
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        histogram.add(np.zeros((1, 1), np.uint8), np.array([[-0.5]], np.float16))


def test_class_balanced_keeps_each_classes_top_fraction_where_a_global_threshold_drops_the_rare_class():
    rng = np.random.default_rng(0)
    labels, doubt = crafted(rng)
    confidence = confidence_of(doubt)
    histogram = ConfidenceHistogram(3)
    for half in (slice(0, 10), slice(10, 20)):  # accumulated over two "images"
        histogram.add(labels[half], doubt[half])

    glob = np.full(3, 0.9)
    assert histogram.kept(glob)[2] == 0  # the rare class disappears under one global threshold
    mask = pseudo_mask(labels, doubt, glob, ignore_index=255)
    assert not (mask == 2).any()

    for fraction in (0.25, 0.5, 0.8, 1.0):
        thresholds = histogram.class_balanced(fraction)
        mask = pseudo_mask(labels, doubt, thresholds, ignore_index=255)
        for c, total in enumerate((410, 150, 40)):
            wanted = int(np.ceil(fraction * total))
            kept = confidence[(mask == c)]
            assert kept.size == wanted == histogram.kept(thresholds)[c]
            # exactly the most confident ones of the class
            top = np.sort(confidence[labels == c])[::-1][:wanted]
            assert np.array_equal(np.sort(kept)[::-1], top)
        assert set(np.unique(mask[mask != 255])) <= {0, 1, 2}


@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_class_balanced_keeps_the_asked_fraction_of_probabilities_crowded_below_1(fraction):
    # float16 confidences put all of [0.99976, 1] in one bin and kept 24% (p=0.1) or 73% (p=0.5) here.
    rng = np.random.default_rng(1)
    p = rng.uniform(0.999, 1.0, size=(2, 200, 250)).astype(np.float32)
    labels = (rng.random(p.shape) < 0.3).astype(np.uint8)  # two classes, each uniform in [0.999, 1]
    histogram = ConfidenceHistogram(2)
    doubts = [float16_doubt(image) for image in p]
    for image_labels, doubt in zip(labels, doubts):  # two images, as the two-pass run adds them
        histogram.add(image_labels, doubt)
    thresholds = histogram.class_balanced(fraction)
    for c in (0, 1):
        kept = sum(int(((pseudo_mask(lab, d, thresholds, 255)) == c).sum()) for lab, d in zip(labels, doubts))
        assert kept == histogram.kept(thresholds)[c]
        assert kept / (labels == c).sum() == pytest.approx(fraction, abs=0.01)


def test_ties_are_kept_together_and_an_unpredicted_class_keeps_nothing():
    histogram = ConfidenceHistogram(3)
    labels = np.array([[1, 1, 1, 1]], np.uint8)
    doubt = np.array([[0.0, 0.0, 0.0, 0.5]], np.float16)
    histogram.add(labels, doubt)
    thresholds = histogram.class_balanced(0.25)
    assert thresholds[1] == 1.0 and histogram.kept(thresholds)[1] == 3  # at least p, ties together
    assert np.isinf(thresholds[0]) and np.isinf(thresholds[2])


def test_min_area_drops_small_regions_of_each_class_only():
    mask = np.zeros((12, 12), np.uint8)
    mask[1:4, 1:4] = 1  # 9 px of class 1
    mask[6, 6] = 1  # 1 px of class 1
    mask[8:12, 8:12] = 2  # 16 px of class 2
    mask[0, 11] = 255
    out = mask.copy()
    remove_small_regions(out, min_area=9, ignore_index=255)
    expected = mask.copy()
    expected[6, 6] = 255
    assert np.array_equal(out, expected)
    remove_small_regions(out, min_area=10, ignore_index=255)
    assert (out[1:4, 1:4] == 255).all() and (out[8:12, 8:12] == 2).all() and (out[0:6, 0:6] != 1).all()


def test_diagonal_pixels_are_one_region_and_the_threshold_is_inclusive():
    labels = np.array([[1, 0], [0, 1]], np.uint8)
    doubt = float16_doubt(np.array([[0.5, 0.9], [0.9, 0.5]], np.float32))
    thresholds = np.array([0.95, 0.5])
    mask = pseudo_mask(labels, doubt, thresholds, ignore_index=255, min_area=2)
    assert mask.tolist() == [[1, 255], [255, 1]]  # class 1 is one 8-connected region of 2, kept at exactly 0.5


def test_float16_doubt_clips_and_resolves_probabilities_next_to_1():
    out = float16_doubt(np.array([1.0000001, 0.3, 0.0, 1 - 2**-23, 1 - 2**-22], np.float32))
    assert out.dtype == np.float16
    assert out.tolist() == [0.0, float(np.float16(0.7)), 1.0, 2**-23, 2**-22]  # float32's own steps below 1
    assert confidence_of(out).tolist() == [1.0, 1 - float(np.float16(0.7)), 0.0, 1 - 2**-23, 1 - 2**-22]
