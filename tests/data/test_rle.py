from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from segkit.data.rle import decode_boxes, parse_counts


def random_masks(rng: np.random.Generator, count: int, height: int, width: int) -> list[np.ndarray]:
    """Noise, rectangles, right-hand slabs (runs wrapping from column to column), full and empty masks."""
    masks = []
    for k in range(count):
        mask = np.zeros((height, width), np.uint8)
        kind = k % 5
        if kind == 0:
            mask = (rng.random((height, width)) < rng.random()).astype(np.uint8)
        elif kind == 1:
            y0, x0 = rng.integers(0, height), rng.integers(0, width)
            mask[y0 : rng.integers(y0, height + 1), x0 : rng.integers(x0, width + 1)] = 1
        elif kind == 2:
            mask[:, rng.integers(0, width) :] = 1
        elif kind == 3:
            mask[:] = 1
        masks.append(mask)
    return masks


def paste(box, height: int, width: int) -> np.ndarray:
    full = np.zeros((height, width), np.uint8)
    if box is not None:
        y0, x0, region = box
        full[y0 : y0 + region.shape[0], x0 : x0 + region.shape[1]] = region
    return full


@pytest.mark.parametrize("seed", range(4))
def test_batched_parse_and_boxes_match_pycocotools(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 40, 2))
    masks = random_masks(rng, 12, height, width)
    rles = [mask_utils.encode(np.asfortranarray(mask)) for mask in masks]
    runs = parse_counts([rle["counts"] for rle in rles])
    assert [int(r.sum()) for r in runs] == [height * width] * len(masks)
    assert all(np.array_equal(a, b) for a, b in zip(runs, [parse_counts([rle["counts"]])[0] for rle in rles]))
    values = rng.integers(1, 256, len(masks)).tolist()
    for mask, rle, box, value in zip(masks, rles, decode_boxes(runs, height, values), values):
        np.testing.assert_array_equal(paste(box, height, width), mask * np.uint8(value))
        if box is None:
            assert not mask.any()
        else:  # the box is the tight one, as pycocotools computes it
            y0, x0, region = box
            assert region.dtype == np.uint8 and region.flags.c_contiguous
            assert [x0, y0, region.shape[1], region.shape[0]] == mask_utils.toBbox(rle).tolist()


def test_long_runs_need_several_characters_and_negative_deltas():
    mask = np.zeros((300, 200), np.uint8)
    mask[10:290, 5:150] = 1  # runs of 280 and 20 pixels: multi-character numbers, deltas of both signs
    mask[100:101, 160] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    (runs,) = parse_counts([rle["counts"]])
    np.testing.assert_array_equal(paste(decode_boxes([runs], 300)[0], 300, 200), mask)


def test_uncompressed_runs_with_empty_foreground_runs():
    # 4x4 image; the run lists start with background and may hold empty runs (as a json can).
    boxes = decode_boxes([np.array([3, 0, 2, 4, 7]), np.array([5, 0, 11]), np.array([16]), np.array([0, 16])], 4)
    expected = np.zeros((4, 4), np.uint8)
    expected.T.flat[5:9] = 1  # column-major pixels 5..8
    np.testing.assert_array_equal(paste(boxes[0], 4, 4), expected)
    assert boxes[0][:2] == (0, 1)  # the empty run at pixel 3 does not widen the box
    assert boxes[1] is None and boxes[2] is None
    np.testing.assert_array_equal(boxes[3][2], np.ones((4, 4), np.uint8))


def test_nothing_to_parse():
    assert parse_counts([]) == [] and decode_boxes([], 4) == []
    empty, zero = parse_counts([b"", b"0"])
    assert empty.size == 0 and zero.tolist() == [0]


@pytest.mark.parametrize(
    ("counts", "why"),
    [
        (b"0\x7f", "the character"),
        (b"/", "the character '/'"),
        (b"o", "middle of a number"),
        (b"3" + b"o" * 12 + b"0", "more than 12 characters"),
        (b"12O", "negative run length"),  # O = 31: sign bit set, so -1
        (b"122@", "negative run length"),  # @ = 16 - 32 = -16, added to the second run: -14
    ],
)
def test_malformed_strings_raise_value_error(counts, why):
    with pytest.raises(ValueError, match=why):
        parse_counts([b"00", counts])
