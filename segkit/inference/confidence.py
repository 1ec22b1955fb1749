"""Per-class confidence histograms fine where confidence is high, pseudo-label thresholds, and their masks.

A confident teacher's max probabilities crowd just below 1, where float16 (step 2^-11 there) merges every
value above ~0.99976 into one bin: a class-balanced cut then keeps far more than asked. So segkit stores and
bins the *doubt* ``1 - p`` (``p``: the merged max probability in float32) as float16, whose resolution is
relative: 11 significant bits down to 2^-14, then steps of 2^-24, which is float32's own step just below 1.
A doubt is computed exactly from a float32 ``p >= 0.5`` and rounded once, so near 1 the bins are those of the
float32 probabilities themselves, and further out they are log-spaced (0.05% of the doubt). Non-negative
float16 numbers order like their bit patterns, so the pattern of a doubt in [0, 1] *is* its bin: :data:`BINS`
= 15361 bins (``0x0000`` .. ``0x3C00``), one ``np.bincount`` per image fills a class's histogram, and a
threshold read from it is exact for the stored maps. Memory is ``classes x 15361`` counts whatever the
number of images, and two bytes of doubt per pixel of a stored map, as with float16 confidences before.

A pixel is kept when its confidence ``1 - doubt`` is at least the threshold of its predicted class (``>=``).
A global ``--threshold t`` gives every class ``t``. Class-balanced thresholds (CBST, Zou et al., ECCV 2018)
give class ``c`` the confidence above which the most confident fraction ``p`` of its predicted pixels lie, so
a rare class the teacher is less sure of keeps its best pixels instead of losing all of them to one global
threshold; pixels of one bin are kept together, so a class keeps at least ``p`` of its pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

BINS = 0x3C00 + 1  # float16 bit patterns 0 .. 0x3C00 = the doubts 0.0 .. 1.0
BIN_VALUES = 1.0 - np.arange(BINS, dtype=np.uint16).view(np.float16).astype(np.float64)  # confidence per bin


class ConfidenceHistogram:
    """Pixel counts per (predicted class, float16 doubt ``1 - confidence``)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.counts = np.zeros((num_classes, BINS), dtype=np.int64)

    def add(self, labels: np.ndarray, doubt: np.ndarray) -> None:
        """``labels``: uint8 classes; ``doubt``: float16 in [0, 1] (:func:`float16_doubt`)."""
        if doubt.dtype != np.float16:
            raise ValueError(f"doubt must be float16, got {doubt.dtype}")
        bins = doubt.reshape(-1).view(np.uint16).astype(np.int64)
        if bins.size and bins.max() >= BINS:  # above 1.0, or the sign bit of a negative value / NaN
            raise ValueError("doubt must lie in [0, 1]")
        flat = labels.reshape(-1).astype(np.int64) * BINS + bins
        self.counts += np.bincount(flat, minlength=self.num_classes * BINS).reshape(self.num_classes, BINS)

    @property
    def predicted(self) -> np.ndarray:
        """Pixels predicted as each class."""
        return self.counts.sum(axis=1)

    def kept(self, thresholds: np.ndarray) -> np.ndarray:
        """Pixels of each class with confidence >= its threshold."""
        return (self.counts * (BIN_VALUES[None, :] >= np.asarray(thresholds, np.float64)[:, None])).sum(axis=1)

    def class_balanced(self, fraction: float) -> np.ndarray:
        """Per class, the largest threshold that keeps at least ``fraction`` of its predicted pixels;
        ``inf`` for a class nothing was predicted as."""
        at_most = self.counts.cumsum(axis=1)  # [c, b]: pixels of c with doubt bin <= b (confidence >= its value)
        thresholds = np.full(self.num_classes, np.inf)
        for c, total in enumerate(self.predicted.tolist()):
            if total:
                wanted = max(1, math.ceil(round(fraction * total, 9)))
                thresholds[c] = BIN_VALUES[int(np.searchsorted(at_most[c], wanted))]
        return thresholds


def float16_doubt(max_probability: np.ndarray) -> np.ndarray:
    """Merged max probabilities (float32) as the float16 doubt ``1 - p`` the thresholds and histograms use."""
    return (np.float32(1.0) - np.clip(max_probability.astype(np.float32), 0.0, 1.0)).astype(np.float16)


def confidence_of(doubt: np.ndarray) -> np.ndarray:
    """The confidence ``1 - doubt`` (float64: exact for every float16 doubt)."""
    return 1.0 - doubt.astype(np.float64)


def pseudo_mask(labels: np.ndarray, doubt: np.ndarray, thresholds: np.ndarray, ignore_index: int,
                min_area: int = 0) -> np.ndarray:
    """The predicted class where the pixel is confident, ``ignore_index`` elsewhere; then every connected
    region (8-neighbour, per class) smaller than ``min_area`` pixels becomes ``ignore_index`` too."""
    kept = confidence_of(doubt) >= np.asarray(thresholds, np.float64)[labels]
    mask = np.where(kept, labels, ignore_index).astype(np.uint8)
    if min_area > 1:
        remove_small_regions(mask, min_area, ignore_index)
    return mask


def remove_small_regions(mask: np.ndarray, min_area: int, ignore_index: int) -> None:
    """In place: connected regions of one class with fewer than ``min_area`` pixels become ``ignore_index``."""
    for c in np.unique(mask).tolist():
        if c == ignore_index:
            continue
        _, components, stats, _ = cv2.connectedComponentsWithStats((mask == c).view(np.uint8), connectivity=8)
        small = stats[:, cv2.CC_STAT_AREA] < min_area
        small[0] = False  # component 0 is everything that is not class c
        if small.any():
            mask[small[components]] = ignore_index
