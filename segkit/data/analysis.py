"""Statistics of COCO annotation files: what a researcher should know before training on them.

Everything comes from the json alone (no image is decoded): per-class object counts, images containing
each class and pixel shares, objects per image, object sizes and image sizes. Pixel shares average each
image's class fractions, so every image counts once, as it does after resizing to a training size (a sum
of raw areas would let a few 12-megapixel photos dominate). Object sizes are shown both in COCO's
absolute terms (small < 32^2 <= medium < 96^2 <= large pixels at the listed image size) and relative to
the image, which is what survives resizing. ``segkit.visualization.dataset_report`` draws them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from segkit.data.json_file import is_int
from segkit.data.kfold import read_coco
from segkit.errors import SegkitError

SMALL, LARGE = 32**2, 96**2  # COCO area thresholds in pixels
SIZE_NAMES = ("small", "medium", "large")


@dataclass
class FileStats:
    """Per-object arrays (one entry per annotation with a usable area) and per-image counts of one json."""

    name: str
    classes: list[str]
    num_images: int
    objects_per_image: np.ndarray
    image_sizes: Counter
    objects_per_class: np.ndarray  # every annotation, with or without a usable area
    object_class: np.ndarray  # index into ``classes`` of each object with an area
    area: np.ndarray  # pixels at the listed image size
    relative_area: np.ndarray  # area / image area
    images_with_class: np.ndarray  # per class
    pixel_share: np.ndarray  # per class, mean over images of the class's area fraction
    crowd: int = 0
    no_area: list[Any] = field(default_factory=list)  # annotation ids whose area could not be determined


def collect(path: str | Path, name: str | None = None, progress: bool = True) -> FileStats:
    """Read one COCO json and compute its statistics; a missing ``area`` is computed from the segmentation."""
    path = Path(path)
    coco = read_coco(path)
    classes, column = _categories(coco["categories"], path)
    sizes: dict[Any, tuple[int, int]] = {}
    for pos, img in enumerate(coco["images"]):
        if not all(is_int(img.get(k)) and img[k] > 0 for k in ("width", "height")):
            raise SegkitError(f"{path}: images[{pos}] needs positive integer 'width' and 'height', got {img!r:.80}")
        sizes[img["id"]] = (img["height"], img["width"])
    position = {image_id: pos for pos, image_id in enumerate(sizes)}

    per_image = np.zeros(len(sizes), np.int64)
    per_class = np.zeros(len(classes), np.int64)
    share_sum = np.zeros(len(classes))
    seen_in: list[set[int]] = [set() for _ in classes]
    object_class, area, relative, no_area, crowd = [], [], [], [], 0
    for ann in tqdm(coco["annotations"], desc=f"reading {path.name}", unit="ann", disable=not progress, leave=False):
        height, width = sizes[ann["image_id"]]
        k, i = column[ann["category_id"]], position[ann["image_id"]]
        per_image[i] += 1
        per_class[k] += 1
        seen_in[k].add(i)
        crowd += bool(ann.get("iscrowd"))
        pixels = _area(ann, height, width)
        if pixels is None:
            no_area.append(ann.get("id"))
            continue
        object_class.append(k)
        area.append(pixels)
        relative.append(pixels / (height * width))
        share_sum[k] += min(pixels / (height * width), 1.0)
    return FileStats(
        name=name or path.name,
        classes=classes,
        num_images=len(sizes),
        objects_per_image=per_image,
        image_sizes=Counter((w, h) for h, w in sizes.values()),
        objects_per_class=per_class,
        object_class=np.asarray(object_class, np.int64),
        area=np.asarray(area, np.float64),
        relative_area=np.asarray(relative, np.float64),
        images_with_class=np.array([len(s) for s in seen_in]),
        pixel_share=share_sum / max(len(sizes), 1),
        crowd=crowd,
        no_area=no_area,
    )


def size_counts(stats: FileStats) -> np.ndarray:
    """``(classes, 3)`` object counts by COCO size (small, medium, large)."""
    bucket = np.digitize(stats.area, [SMALL, LARGE])
    out = np.zeros((len(stats.classes), 3), np.int64)
    np.add.at(out, (stats.object_class, bucket), 1)
    return out


# --- reading ---------------------------------------------------------------------------------------------


def _categories(categories: list[Any], path: Path) -> tuple[list[str], dict[int, int]]:
    cats = []
    for pos, cat in enumerate(categories):
        if not isinstance(cat, dict) or not is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise SegkitError(f"{path}: categories[{pos}] needs an integer 'id' and a string 'name', got {cat!r:.80}")
        cats.append((cat["id"], cat["name"]))
    cats.sort()
    return [name for _, name in cats], {cat_id: k for k, (cat_id, _) in enumerate(cats)}


def _area(ann: dict, height: int, width: int) -> float | None:
    """The json's ``area`` if it is a positive number, else the segmentation's pixel count (None if unusable)."""
    value = ann.get("area")
    if type(value) in (int, float) and math.isfinite(value) and value > 0:
        return float(value)
    segm = ann.get("segmentation")
    try:
        if isinstance(segm, list):
            parts = [p for p in segm if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
            if not parts:
                return None
            return float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(parts, height, width))))
        if isinstance(segm, dict) and "counts" in segm:
            rle = segm
            if isinstance(segm["counts"], list):
                rle = mask_utils.frPyObjects(segm, height, width)
            elif isinstance(segm["counts"], str):
                rle = {**segm, "counts": segm["counts"].encode("utf-8")}
            return float(mask_utils.area(rle))
    except (TypeError, ValueError, OverflowError):
        return None
    return None
