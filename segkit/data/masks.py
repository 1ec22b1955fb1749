"""COCO annotations -> one uint8 class mask per image.

Class indices follow the category *rank*: Background (unannotated pixels) is 0 and the categories,
sorted by COCO id, are 1..K, so ids need not be contiguous or start anywhere in particular. 255 is
reserved for "ignore", which is why a mask holds at most 254 classes.

Overlaps are resolved by painting the largest region first and the smallest last: a small object
lying on a large one (a cap on a bottle, a bottle on a bag) stays visible in the mask. Areas are the
decoded masks' own pixel counts, because the json "area" field is whatever the annotation tool wrote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from segkit.errors import SegkitError

IGNORE_INDEX = 255
MAX_CLASSES = 254


def class_index_map(categories: list[dict]) -> tuple[list[str], dict[int, int]]:
    """Class names (Background first, then categories by ascending id) and ``{category_id: index}``."""
    names_by_id: dict[int, str] = {}
    for pos, cat in enumerate(categories):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise SegkitError(
                f"categories[{pos}] must be a dict with an integer 'id' and a string 'name', got {cat!r}"
            )
        if cat["id"] in names_by_id:
            raise SegkitError(
                f"category id {cat['id']} appears twice ({names_by_id[cat['id']]!r} and {cat['name']!r}); "
                "category ids must be unique"
            )
        names_by_id[cat["id"]] = cat["name"]
    ids = sorted(names_by_id)
    names = ["Background"] + [names_by_id[i] for i in ids]
    if len(names) > MAX_CLASSES:
        raise SegkitError(
            f"{len(ids)} categories give {len(names)} classes with Background, more than the {MAX_CLASSES} "
            f"a uint8 mask can hold ({IGNORE_INDEX} is the ignore value); merge categories"
        )
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise SegkitError(
                f"class name {name!r} is used by classes {seen[name]} and {index} (Background is class 0); "
                "metrics are keyed by name, so rename one of the categories"
            )
        seen[name] = index
    return names, {cat_id: rank + 1 for rank, cat_id in enumerate(ids)}


def annotation_rle(ann: dict, height: int, width: int) -> dict:
    """The annotation's region as a compressed pycocotools RLE of size ``[height, width]``.

    Accepts polygons (a list of flat ``[x0, y0, x1, y1, ...]`` parts, merged into one region),
    uncompressed RLE (``counts`` a list of run lengths) and compressed RLE (``counts`` str/bytes).
    """
    segm = ann.get("segmentation")
    if isinstance(segm, list):
        return _polygon_rle(ann, segm, height, width)
    if isinstance(segm, dict) and "counts" in segm and "size" in segm:
        return _checked_rle(ann, segm, height, width)
    raise _malformed(ann, "expected a list of polygons or an RLE dict with 'counts' and 'size'")


def rasterize(anns: list[dict], height: int, width: int, cat_to_index: dict[int, int]) -> np.ndarray:
    """Paint the annotations into a ``(height, width)`` uint8 class mask, 0 where nothing is annotated."""
    indices = [_class_index(ann, cat_to_index) for ann in anns]
    rles = [annotation_rle(ann, height, width) for ann in anns]
    areas = [int(mask_utils.area(rle)) for rle in rles]
    mask = np.zeros((height, width), dtype=np.uint8)
    for k in largest_first(areas):
        _paint(mask, rles[k], indices[k])
    return mask


def largest_first(areas: Sequence[int]) -> list[int]:
    """Paint order: descending area, annotation order among equal areas (``sorted`` is stable)."""
    return sorted(range(len(areas)), key=lambda k: -areas[k])


def _paint(mask: np.ndarray, rle: dict, index: int) -> None:
    """Write ``index`` where the RLE is set, touching only its bounding box (images can be 12 MP)."""
    x, y, w, h = (int(v) for v in mask_utils.toBbox(rle))
    if w == 0 or h == 0:
        return
    region = mask_utils.decode(rle)[y : y + h, x : x + w]
    np.copyto(mask[y : y + h, x : x + w], np.uint8(index), where=region.view(bool))


def _class_index(ann: dict, cat_to_index: dict[int, int]) -> int:
    cat_id = ann.get("category_id")
    if not _is_int(cat_id) or cat_id not in cat_to_index:
        raise SegkitError(
            f"annotation id={ann.get('id')!r} has category_id={cat_id!r}, which is not among the categories "
            f"(known ids: {sorted(cat_to_index)}); fix the annotation or add the category"
        )
    return cat_to_index[cat_id]


def _polygon_rle(ann: dict, parts: list, height: int, width: int) -> dict:
    if not parts:
        raise _malformed(ann, "the polygon list is empty")
    arrays = []
    for n, part in enumerate(parts):
        if not isinstance(part, list) or not all(_is_number(v) for v in part):
            raise _malformed(ann, f"polygon part {n} is not a flat list of numbers")
        if len(part) % 2 or len(part) < 6:
            raise _malformed(ann, f"polygon part {n} has {len(part)} numbers; it needs x,y pairs, at least 3")
        arrays.append(np.asarray(part, dtype=np.float64))
    return mask_utils.merge(mask_utils.frPyObjects(arrays, height, width))


def _checked_rle(ann: dict, segm: dict, height: int, width: int) -> dict:
    """Validate an RLE before pycocotools sees it: a short run-length total decodes to garbage pixels."""
    size = segm["size"]
    if not isinstance(size, (list, tuple)) or [int(v) for v in size if _is_int(v)] != [height, width]:
        raise _malformed(ann, f"RLE size {size!r} does not match the image size [{height}, {width}]")
    counts = segm["counts"]
    if isinstance(counts, list):
        if not all(_is_int(c) and c >= 0 for c in counts):
            raise _malformed(ann, "uncompressed RLE counts must be non-negative integers")
        total = sum(counts)
        rle = mask_utils.frPyObjects({"counts": counts, "size": [height, width]}, height, width)
    elif isinstance(counts, (str, bytes)):
        raw = counts.encode("utf-8") if isinstance(counts, str) else counts
        rle = {"counts": raw, "size": [height, width]}
        total = _compressed_total(ann, raw)
    else:
        raise _malformed(ann, f"RLE counts must be a list of ints or a string, got {type(counts).__name__}")
    if total != height * width:
        raise _malformed(ann, f"RLE runs cover {total} pixels, not {height}x{width}={height * width}")
    return rle


def _compressed_total(ann: dict, counts: bytes) -> int:
    """Sum of the run lengths in pycocotools' compressed string (its rleFrString, run totals only)."""
    runs: list[int] = []
    pos = 0
    while pos < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(counts):
                raise _malformed(ann, "compressed RLE counts end in the middle of a number")
            c = counts[pos] - 48
            if not 0 <= c < 64:
                raise _malformed(ann, f"compressed RLE counts contain the character {chr(counts[pos])!r}")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise _malformed(ann, "compressed RLE counts decode to a negative run length")
        runs.append(value)
    return sum(runs)


def _malformed(ann: dict, why: str) -> SegkitError:
    return SegkitError(f"annotation id={ann.get('id')!r} has a malformed segmentation: {why}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
