"""COCO annotations -> one uint8 class mask per image, under a chosen overlap policy.

Where annotations overlap, ``data.overlap`` decides which class a pixel gets:

- ``area_desc`` (default): paint the largest region first and the smallest last, so a small object lying
  on a large one (a cap on a bottle, a bottle on a bag) stays visible. Areas are the decoded regions' own
  pixel counts, because the json "area" field is whatever the annotation tool wrote.
- ``max_class``: the highest class index wins (``np.maximum`` of class-scaled masks; the 2021 trash
  competition baseline).
- ``poly_len_asc``: paint in ascending length of the first polygon's coordinate list (the 2022 baseline's
  proxy for size); RLE annotations count as length 0.
- ``annotation_order``: json order, later annotations on top.

Ties keep json order (the sorts are stable). Category indices come from ``segkit.data.classes``: 0 means
the category is dropped (not painted), the ignore index (``data.ignore_index``, 255 by default) takes part
in the policy like any class. With ``crowd="ignore"``, ``iscrowd`` regions become the ignore index only where
no other annotation lies (beneath every
object, whatever the policy). An image record's ``ignore_rle`` (:data:`IGNORE_REGION`, an RLE of the image's
size; written by ``tools/pseudo_label.py`` for its unconfident pixels) is painted with the ignore index last,
over everything. Every region is decoded and painted only inside its bounding box
(``segkit.data.rle``), with OpenCV's masked copies, so a small object costs little even in a large photo.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from segkit.data.classes import IGNORE_INDEX
from segkit.data.rle import decode_boxes, parse_counts
from segkit.data.json_file import is_int
from segkit.errors import SegkitError

OVERLAP_POLICIES = ("area_desc", "max_class", "poly_len_asc", "annotation_order")
CROWD_MODES = ("paint", "ignore")
IGNORE_REGION = "ignore_rle"  # image-record field: an RLE of pixels that are data.ignore_index whatever is annotated


def segmentation_problem(ann: dict, height: int, width: int) -> str | None:
    """Why the annotation's segmentation cannot be rasterised at ``height x width``, or None if it can.

    Cheap enough to run over a whole json at dataset construction: polygons are only checked,
    RLE strings only parsed, nothing is rasterised.
    """
    try:
        source = _segmentation_source(ann, height, width)
        if isinstance(source, bytes):
            _checked_total(_parse_one(source), height, width)
    except _Malformed as err:
        return str(err)
    return None


def ignore_region_problem(region: Any, height: int, width: int) -> str | None:
    """Why an image record's ``ignore_rle`` is unusable at ``height x width``, or None if it is a valid RLE."""
    if not isinstance(region, dict):
        return f"expected an RLE dict with 'counts' and 'size', got {type(region).__name__}"
    return segmentation_problem({"segmentation": region}, height, width)


def annotation_runs(anns: Sequence[dict], height: int, width: int) -> list[np.ndarray]:
    """Each region's run lengths over the image in COCO's column-major order, background run first.

    Accepts polygons (a list of flat ``[x0, y0, x1, y1, ...]`` parts, merged into one region, rasterised by
    pycocotools), uncompressed RLE (``counts`` a list of run lengths) and compressed RLE (``counts`` a
    str/bytes). All polygons of the image go to pycocotools in one call, and all compressed strings are
    parsed in one go.
    """
    sources = []
    for ann in anns:
        try:
            sources.append(_segmentation_source(ann, height, width))
        except _Malformed as err:
            raise _named(ann, err) from err
    parts = [part for source in sources if isinstance(source, list) for part in source]
    polygon_rles = iter(mask_utils.frPyObjects(parts, height, width) if parts else ())
    strings = []
    for source in sources:
        if isinstance(source, list):
            rles = [next(polygon_rles) for _ in source]
            strings.append(rles[0]["counts"] if len(rles) == 1 else mask_utils.merge(rles)["counts"])
        elif isinstance(source, bytes):
            strings.append(source)
    try:
        parsed = iter(parse_counts(strings))
    except ValueError:  # find the culprit; rare enough that parsing one by one costs nothing
        for ann, source in zip(anns, sources):
            if isinstance(source, bytes):
                try:
                    _parse_one(source)
                except _Malformed as err:
                    raise _named(ann, err) from err
        raise
    runs = [source if isinstance(source, np.ndarray) else next(parsed) for source in sources]
    for ann, source, region in zip(anns, sources, runs):
        if isinstance(source, bytes):  # pycocotools' own polygon strings always add up
            try:
                _checked_total(region, height, width)
            except _Malformed as err:
                raise _named(ann, err) from err
    return runs


def paint_order(anns: Sequence[dict], areas: Sequence[int], overlap: str) -> list[int]:
    """Positions in ``anns`` from bottom to top under a painter's policy (all but ``max_class``)."""
    if overlap == "area_desc":
        return sorted(range(len(anns)), key=lambda k: -areas[k])
    if overlap == "poly_len_asc":
        return sorted(range(len(anns)), key=lambda k: _first_polygon_len(anns[k]))
    if overlap == "annotation_order":
        return list(range(len(anns)))
    raise ValueError(f"no paint order for overlap policy {overlap!r}")


def rasterize(
    anns: list[dict],
    height: int,
    width: int,
    cat_to_index: dict[int, int],
    overlap: str = "area_desc",
    crowd: str = "paint",
    ignore_index: int = IGNORE_INDEX,
    ignore_region: dict | None = None,
) -> np.ndarray:
    """Paint the annotations into a ``(height, width)`` uint8 class mask, 0 where nothing is annotated;
    ``ignore_region`` (an image's ``ignore_rle``) becomes ``ignore_index`` on top of everything."""
    if overlap not in OVERLAP_POLICIES:
        raise SegkitError(f"overlap policy {overlap!r} is not one of {', '.join(OVERLAP_POLICIES)}")
    if crowd not in CROWD_MODES:
        raise SegkitError(f"crowd mode {crowd!r} is not one of {', '.join(CROWD_MODES)}")
    kept = [(ann, index) for ann in anns if (index := _class_index(ann, cat_to_index)) != 0]
    is_crowd = [crowd == "ignore" and bool(ann.get("iscrowd")) for ann, _ in kept]
    runs = annotation_runs([ann for ann, _ in kept], height, width)
    values = [ignore_index if crowd_region else index for (_, index), crowd_region in zip(kept, is_crowd)]
    objects, crowds = [], []
    for (ann, _), region_runs, box, crowd_region in zip(kept, runs, decode_boxes(runs, height, values), is_crowd):
        if box is None:
            continue
        if crowd_region:
            crowds.append(box)
        else:
            objects.append((ann, int(region_runs[1::2].sum()), box))
    mask = np.zeros((height, width), dtype=np.uint8)
    order = range(len(objects)) if overlap == "max_class" else \
        paint_order([obj[0] for obj in objects], [obj[1] for obj in objects], overlap)
    for k in order:  # a region holds its class index on 0: OpenCV copies (or maxes) it in place
        y0, x0, region = objects[k][2]
        box = mask[y0 : y0 + region.shape[0], x0 : x0 + region.shape[1]]
        if overlap == "max_class":
            cv2.max(box, region, dst=box)
        else:
            cv2.copyTo(region, region, box)
    for y0, x0, region in crowds:
        box = mask[y0 : y0 + region.shape[0], x0 : x0 + region.shape[1]]
        cv2.copyTo(region, ((region != 0) & (box == 0)).view(np.uint8), box)
    if ignore_region is not None:
        runs = annotation_runs([{"id": IGNORE_REGION, "segmentation": ignore_region}], height, width)
        ignored = decode_boxes(runs, height, [ignore_index])[0]
        if ignored is not None:
            y0, x0, region = ignored
            box = mask[y0 : y0 + region.shape[0], x0 : x0 + region.shape[1]]
            cv2.copyTo(region, region, box)
    return mask


class _Malformed(ValueError):
    """A segmentation that cannot be rasterised; the message says why, the caller adds which one."""


def _class_index(ann: dict, cat_to_index: dict[int, int]) -> int:
    cat_id = ann.get("category_id")
    if not is_int(cat_id) or cat_id not in cat_to_index:
        raise SegkitError(
            f"annotation id={ann.get('id')!r} has category_id={cat_id!r}, which is not among the categories "
            f"(known ids: {sorted(cat_to_index)}); fix the annotation or add the category"
        )
    return cat_to_index[cat_id]


def _first_polygon_len(ann: dict) -> int:
    segm = ann["segmentation"]
    return len(segm[0]) if isinstance(segm, list) else 0


def _checked_polygons(parts: list) -> list:
    if not parts:
        raise _Malformed("the polygon list is empty")
    for n, part in enumerate(parts):
        if not isinstance(part, list):
            raise _Malformed(f"polygon part {n} is not a list")
        try:  # fsum walks the list in C: rejects non-numbers (TypeError) and inf - inf (ValueError)
            finite = math.isfinite(math.fsum(part))
        except (TypeError, ValueError, OverflowError):
            finite = False
        if not finite:
            raise _Malformed(f"polygon part {n} is not a flat list of finite numbers")
        if len(part) % 2:
            raise _Malformed(f"polygon part {n} has an odd count of {len(part)} numbers; it needs x,y pairs")
        if len(part) < 6:
            raise _Malformed(f"polygon part {n} has {len(part) // 2} points; a polygon needs at least 3")
    return parts


def _segmentation_source(ann: dict, height: int, width: int) -> list | bytes | np.ndarray:
    """Checked polygon parts, a compressed counts string to parse, or checked uncompressed run lengths."""
    segm = ann.get("segmentation") if isinstance(ann, dict) else None
    if isinstance(segm, list):
        return _checked_polygons(segm)
    if not (isinstance(segm, dict) and "counts" in segm and "size" in segm):
        raise _Malformed("expected a list of polygons or an RLE dict with 'counts' and 'size'")
    size = segm["size"]
    if not isinstance(size, list | tuple) or [int(v) for v in size if is_int(v)] != [height, width]:
        raise _Malformed(f"RLE size {size!r} does not match the image size [{height}, {width}]")
    counts = segm["counts"]
    if isinstance(counts, str):
        return counts.encode("utf-8")
    if isinstance(counts, bytes):
        return counts
    if isinstance(counts, list):
        if not all(is_int(c) and c >= 0 for c in counts):
            raise _Malformed("uncompressed RLE counts must be non-negative integers")
        return _checked_total(np.asarray(counts, dtype=np.int64), height, width)
    raise _Malformed(f"RLE counts must be a list of ints or a string, got {type(counts).__name__}")


def _parse_one(counts: bytes) -> np.ndarray:
    try:
        return parse_counts([counts])[0]
    except ValueError as err:
        raise _Malformed(str(err)) from err


def _checked_total(runs: np.ndarray, height: int, width: int) -> np.ndarray:
    """A short or long run total would decode to garbage pixels in pycocotools."""
    total = int(runs.sum())
    if total != height * width:
        raise _Malformed(f"RLE runs cover {total} pixels, not {height}x{width}={height * width}")
    return runs


def _named(ann: dict, err: Exception) -> SegkitError:
    return SegkitError(f"annotation id={ann.get('id')!r} has a malformed segmentation: {err}")
