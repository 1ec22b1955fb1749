"""Per-class confidence histograms at float16 resolution, pseudo-label thresholds, and the masks they leave.

Confidence is the merged max probability of the Predictor, rounded to float16 (its step is 2^-11, about
0.0005, just below 1). Non-negative float16 numbers order like their bit patterns, so the pattern of a value
in [0, 1] *is* its bin: :data:`BINS` = 15361 bins (``0x0000`` .. ``0x3C00``) hold every float16 value from 0
to 1, one ``np.bincount`` per image fills a class's histogram, and a threshold read from it is exact. Memory
is ``classes x 15361`` counts whatever the number of images.

A pixel is kept when its confidence is at least the threshold of its predicted class (``>=``). A global
``--threshold t`` gives every class ``t``. Class-balanced thresholds (CBST, Zou et al., ECCV 2018) give
class ``c`` the confidence above which the most confident fraction ``p`` of its predicted pixels lie, so a
rare class the teacher is less sure of keeps its best pixels instead of losing all of them to one global
threshold; ties at float16 resolution are kept together, so a class keeps at least ``p`` of its pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

BINS = 0x3C00 + 1  # float16 bit patterns 0 .. 0x3C00 = the values 0.0 .. 1.0
BIN_VALUES = np.arange(BINS, dtype=np.uint16).view(np.float16).astype(np.float64)


class ConfidenceHistogram:
    """Pixel counts per (predicted class, float16 confidence)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.counts = np.zeros((num_classes, BINS), dtype=np.int64)

    def add(self, labels: np.ndarray, confidence: np.ndarray) -> None:
        """``labels``: uint8 classes; ``confidence``: float16 in [0, 1] (:func:`float16_confidence`)."""
        if confidence.dtype != np.float16:
            raise ValueError(f"confidence must be float16, got {confidence.dtype}")
        bins = confidence.reshape(-1).view(np.uint16).astype(np.int64)
        if bins.size and bins.max() >= BINS:  # above 1.0, or the sign bit of a negative value / NaN
            raise ValueError("confidence must lie in [0, 1]")
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
        at_least = self.counts[:, ::-1].cumsum(axis=1)[:, ::-1]  # [c, b]: pixels of c with bin >= b
        thresholds = np.full(self.num_classes, np.inf)
        for c, total in enumerate(self.predicted.tolist()):
            if total:
                wanted = max(1, math.ceil(round(fraction * total, 9)))
                thresholds[c] = BIN_VALUES[int((at_least[c] >= wanted).sum()) - 1]
        return thresholds


def float16_confidence(max_probability: np.ndarray) -> np.ndarray:
    """Merged max probabilities (float32) as the float16 confidence the thresholds and histograms use."""
    return np.clip(max_probability, 0.0, 1.0).astype(np.float16)


def pseudo_mask(labels: np.ndarray, confidence: np.ndarray, thresholds: np.ndarray, ignore_index: int,
                min_area: int = 0) -> np.ndarray:
    """The predicted class where the pixel is confident, ``ignore_index`` elsewhere; then every connected
    region (8-neighbour, per class) smaller than ``min_area`` pixels becomes ``ignore_index`` too."""
    kept = confidence.astype(np.float64) >= np.asarray(thresholds, np.float64)[labels]
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
