"""Class-index PNG masks (CamVid, ADE20K, VOC, Cityscapes trainIds style) -> a COCO json segkit trains on.

Mask value ``k`` is the class named on line ``k`` of the class-names file (0-based). Every class becomes the
category with id ``k``; a class named ``background`` or ``_background_`` (any case) becomes no annotation at
all, so its pixels are segkit's Background (class 0); the ignore value becomes the image's ``ignore_rle``
(segkit paints it ``data.ignore_index``). With a background class at value 0 segkit's class indices equal the
mask values; without one, class ``k`` is segkit index ``k + 1`` (categories sorted by id, Background first).

Every region is a compressed RLE, never a polygon: a traced polygon rasterised again by pycocotools loses or
gains pixels along its edges, RLE round-trips exactly. Stuff classes are one RLE per image and class; the
``things`` are one RLE per 8-connected region, so instance-level tools (copy-paste, COCO viewers) see
separate objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from segkit.data.classes import BACKGROUND_NAMES
from segkit.data.masks import IGNORE_REGION
from segkit.data.rle import region_rle
from segkit.errors import SegkitError
from segkit.paths import atomic_file

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def read_class_names(path: Path) -> list[str]:
    """One class name per line, line ``k`` = mask value ``k``; blank lines are errors (they would shift values)."""
    if not path.is_file():
        raise SegkitError(f"--classes {path}: file not found; give a text file with one class name per line "
                          "(line k = mask value k)")
    names = path.read_text(encoding="utf-8").splitlines()
    while names and not names[-1].strip():
        names.pop()
    blank = [i for i, n in enumerate(names) if not n.strip()]
    if not names or blank:
        raise SegkitError(f"{path}: {'no class names' if not names else f'line {blank[0] + 1} is blank'}; one name "
                          "per line, line k naming mask value k")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SegkitError(f"{path}: class name {duplicated[0]!r} appears twice; names must be unique")
    return [n.strip() for n in names]


def pair_files(images: Path, masks: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs by relative path without suffix (``a/0001.jpg`` <-> ``a/0001.png``); strays are errors."""
    for folder, what in ((images, "--images"), (masks, "--masks")):
        if not folder.is_dir():
            raise SegkitError(f"{what} {folder}: no such folder")
    found = {p.relative_to(images).with_suffix(""): p for p in _files(images)}
    marks = {p.relative_to(masks).with_suffix(""): p for p in _files(masks, (".png",))}
    no_mask = sorted(set(found) - set(marks))
    if no_mask:
        raise SegkitError(f"{found[no_mask[0]]}: no mask {masks / no_mask[0]}.png ({len(no_mask)} image(s) without a "
                          "mask); every image needs a PNG mask of the same name")
    no_image = sorted(set(marks) - set(found))
    if no_image:
        raise SegkitError(f"{marks[no_image[0]]}: no image of that name in {images} ({len(no_image)} mask(s) without "
                          "an image)")
    if not found:
        raise SegkitError(f"--images {images}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return [(found[k], marks[k]) for k in sorted(found)]


def _files(folder: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> Iterable[Path]:
    return (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def read_mask(path: Path, size: tuple[int, int], image: Path) -> np.ndarray:
    """A single-channel (or palette) PNG of ``size`` (width, height) as an int array of class values."""
    try:
        with Image.open(path) as picture:
            if picture.mode not in ("L", "P", "I", "I;16"):
                raise SegkitError(f"{path}: a {picture.mode} image, not a class-index mask (one channel or a "
                                  "palette PNG whose indices are the classes)")
            mask = np.asarray(picture)
    except OSError as err:
        raise SegkitError(f"{path}: not a readable PNG ({err})") from err
    if (mask.shape[1], mask.shape[0]) != size:
        raise SegkitError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {image} is "
                          f"{size[0]}x{size[1]}; masks must have their image's size")
    return mask.astype(np.int64)


def image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as picture:
            return picture.size
    except OSError as err:
        raise SegkitError(f"{path}: not a readable image ({err})") from err


def annotations_of(mask: np.ndarray, names: Sequence[str], things: set[str], ignore: int | None,
                   path: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The image's annotation records (without ids) and its ``ignore_rle`` region, if any."""
    values = np.unique(mask)
    unknown = [int(v) for v in values if v != ignore and not 0 <= v < len(names)]
    if unknown:
        raise SegkitError(f"{path}: mask value {unknown[0]} is not a class (the names file has values 0.."
                          f"{len(names) - 1}{'' if ignore is None else f', ignore {ignore}'}); "
                          "add its name or pass --ignore")
    records = []
    for value in values:
        if value == ignore or names[value].lower() in BACKGROUND_NAMES:
            continue
        region = mask == value
        parts = _components(region) if names[value] in things else [region]
        for part in parts:
            records.append({"category_id": int(value), "segmentation": region_rle(part), "area": int(part.sum()),
                            "bbox": _bbox(part), "iscrowd": 0})
    ignored = region_rle(mask == ignore) if ignore is not None and (mask == ignore).any() else None
    return records, ignored


def _components(region: np.ndarray) -> list[np.ndarray]:
    count, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    return [labels == k for k in range(1, count)]


def _bbox(region: np.ndarray) -> list[int]:
    x, y, w, h = cv2.boundingRect(region.astype(np.uint8))
    return [int(x), int(y), int(w), int(h)]


def masks_to_coco(images: Path, masks: Path, names: Sequence[str], ignore: int | None = None,
                  things: Sequence[str] = ()) -> dict[str, Any]:
    """The COCO dict: ``file_name`` relative to ``images`` (use that folder as ``data.img_dir``)."""
    unknown = sorted(set(things) - set(names))
    if unknown:
        raise SegkitError(f"--things {unknown[0]!r}: not in the class names ({', '.join(names)})")
    if ignore is not None and 0 <= ignore < len(names):
        raise SegkitError(f"--ignore {ignore}: that value is the class {names[ignore]!r}; the ignore value must "
                          "not name a class")
    coco: dict[str, Any] = {"images": [], "annotations": [], "categories": [
        {"id": k, "name": n, "supercategory": "thing" if n in things else "stuff"}
        for k, n in enumerate(names) if n.lower() not in BACKGROUND_NAMES]}
    for image_id, (image, mask_file) in enumerate(pair_files(images, masks), start=1):
        size = image_size(image)
        records, ignored = annotations_of(read_mask(mask_file, size, image), names, set(things), ignore, mask_file)
        record: dict[str, Any] = {"id": image_id, "file_name": image.relative_to(images).as_posix(),
                                  "width": size[0], "height": size[1]}
        if ignored is not None:
            record[IGNORE_REGION] = ignored
        coco["images"].append(record)
        for ann in records:
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id, **ann})
    return coco


def write_coco(coco: dict[str, Any], out: Path) -> None:
    with atomic_file(out) as handle:
        json.dump(coco, handle, separators=(",", ":"))
