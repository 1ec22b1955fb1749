"""Every TACO image at its listed size, every overlap policy: segkit's masks against pycocotools.

Decoding 4784 annotations at up to 24 MP with pycocotools takes minutes, so the reference stays in
pycocotools' RLE algebra (``annToRLE``, ``merge``, ``area``, ``toBbox``), which costs nothing per pixel.
Our mask is turned into RLEs too, one per class, from its crops inside the annotations' boxes; then
pixel-for-pixel equality with the policy's painting follows from a few area identities per annotation
(each test below says which). The photos themselves are not needed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from segkit.data.classes import class_index_map
from segkit.data.masks import rasterize

TACO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "taco" / "annotations.json"


@pytest.fixture(scope="module")
def taco() -> COCO:
    if not TACO.is_file():
        pytest.skip(f"shared fixture {TACO} is absent (it lives beside the checkout, not in it)")
    coco = COCO()
    coco.dataset = json.loads(TACO.read_text())
    coco.createIndex()
    return coco


def segments_rle(start: np.ndarray, end: np.ndarray, height: int, width: int) -> dict:
    """A pycocotools RLE of the sorted, disjoint column-major pixel ranges ``[start, end)``."""
    bounds = np.column_stack([start, end]).ravel()
    touching = np.flatnonzero(bounds[1:-1:2] == bounds[2::2])  # a range ends where the next begins
    keep = np.ones(bounds.size, dtype=bool)
    keep[2 * touching + 1] = keep[2 * touching + 2] = False
    counts = np.diff(np.concatenate([[0], bounds[keep], [height * width]]))
    return mask_utils.frPyObjects({"counts": counts.tolist(), "size": [height, width]}, height, width)


def class_rles(mask: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> dict[int, dict]:
    """{class: RLE of the mask's pixels of that class inside the union of ``boxes``}."""
    height, width = mask.shape
    pieces: dict[int, list[dict]] = defaultdict(list)
    for x0, y0, w, h in boxes:
        columns = cv2.transpose(np.ascontiguousarray(mask[y0 : y0 + h, x0 : x0 + w]))  # one row per image column
        inner = np.flatnonzero(columns[:, 1:] != columns[:, :-1])  # value changes inside a column
        step = max(h - 1, 1)
        col = np.arange(w)
        # Every column is cut at its top (row 0), its bottom (row h) and wherever its value changes.
        cuts = np.sort(np.concatenate([inner // step * (h + 1) + inner % step + 1, col * (h + 1),
                                       col * (h + 1) + h]))
        col, row = np.divmod(cuts, h + 1)
        same = col[1:] == col[:-1]
        col, top, bottom = col[:-1][same], row[:-1][same], row[1:][same]
        values = columns[col, top]
        for value in np.unique(values[values != 0]).tolist():
            chosen = values == value
            start = (col[chosen] + x0) * height + y0 + top[chosen]
            pieces[value].append(segments_rle(start, start + bottom[chosen] - top[chosen], height, width))
    return {value: mask_utils.merge(rles) for value, rles in pieces.items()}


def union(rles: list[dict | None]) -> dict | None:
    present = [rle for rle in rles if rle is not None]
    return mask_utils.merge(present) if present else None


def inside(rle: dict, container: dict | None) -> bool:
    if container is None:
        return int(mask_utils.area(rle)) == 0
    return int(mask_utils.area(mask_utils.merge([rle, container], intersect=True))) == int(mask_utils.area(rle))


def reference_order(anns: list[dict], rles: list[dict], overlap: str) -> list[int]:
    """Bottom to top, written from the policy definitions (stable sorts keep json order on ties)."""
    if overlap == "area_desc":
        return sorted(range(len(anns)), key=lambda k: -int(mask_utils.area(rles[k])))
    if overlap == "poly_len_asc":
        return sorted(range(len(anns)), key=lambda k: len(anns[k]["segmentation"][0]))
    return list(range(len(anns)))


def check_image(coco: COCO, image: dict, cat_to_index: dict[int, int], overlap: str) -> None:
    anns = coco.imgToAnns[image["id"]]
    mask = rasterize(anns, image["height"], image["width"], cat_to_index, overlap=overlap)
    rles = [coco.annToRLE(ann) for ann in anns]
    classes = [cat_to_index[ann["category_id"]] for ann in anns]
    boxes = [tuple(int(v) for v in mask_utils.toBbox(rle)) for rle in rles]
    ours = class_rles(mask, boxes)
    annotated = union(rles)
    # Everything annotated is nonzero in the mask (the identities below), so equal counts mean that
    # nothing outside the annotations is.
    assert np.count_nonzero(mask) == (int(mask_utils.area(annotated)) if annotated else 0), image["file_name"]
    if overlap == "max_class":
        # Each annotation lies inside the pixels of its class or higher, and each class's pixels lie
        # inside annotations of that class: so every pixel holds the largest class covering it.
        for rle, index in zip(rles, classes):
            assert inside(rle, union([ours.get(c) for c in ours if c >= index])), image["file_name"]
        for index, region in ours.items():
            assert inside(region, union([rle for rle, c in zip(rles, classes) if c == index])), image["file_name"]
        return
    # Painter's order: each annotation's pixels not covered by a later-painted one hold its class.
    above = None
    for k in reversed(reference_order(anns, rles, overlap)):
        assert inside(rles[k], union([ours.get(classes[k]), above])), (image["file_name"], anns[k]["id"])
        above = union([above, rles[k]])


@pytest.mark.parametrize(
    ("overlap", "first", "step"),
    [("area_desc", 0, 1), ("max_class", 0, 3), ("poly_len_asc", 1, 3), ("annotation_order", 2, 3)],
)
def test_every_taco_image_matches_pycocotools(taco, overlap, first, step):
    """The default policy on all 1500 images; each other policy on a third of them, the thirds disjoint,
    so every image is also checked under one other policy (all four on all images take a minute)."""
    _, cat_to_index = class_index_map(taco.dataset["categories"])
    for image in taco.dataset["images"][first::step]:
        check_image(taco, image, cat_to_index, overlap)


@pytest.mark.parametrize("overlap", ["area_desc", "max_class"])
@pytest.mark.parametrize("where", ["inside", "outside"])
def test_the_check_notices_one_wrong_pixel(taco, monkeypatch, overlap, where):
    image = min(taco.dataset["images"], key=lambda img: img["height"] * img["width"])
    _, cat_to_index = class_index_map(taco.dataset["categories"])
    x, y, w, h = (int(v) for v in mask_utils.toBbox(taco.annToRLE(taco.imgToAnns[image["id"]][0])))

    exact = rasterize

    def off_by_one_pixel(*args, **kwargs):
        mask = exact(*args, **kwargs)
        if where == "inside":  # the annotation's first pixel, column-major, gets another class
            row = y + int(np.argmax(mask[y : y + h, x] != 0))
            mask[row, x] = 59 if mask[row, x] != 59 else 58
        else:
            mask[image["height"] - 1, image["width"] - 1] = 1 if not mask[-1, -1] else 0
        return mask

    monkeypatch.setattr(f"{__name__}.rasterize", off_by_one_pixel)
    with pytest.raises(AssertionError):
        check_image(taco, image, cat_to_index, overlap)
