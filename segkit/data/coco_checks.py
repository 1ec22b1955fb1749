"""A COCO json's images and annotations, checked before training: each bad record stops or is skipped.

Exported and merged jsons have broken records: polygons with two points, odd coordinate counts, NaNs, RLE
masks of another size, width/height that disagree with the photo, duplicate ids, annotations of images
that are not listed. With ``on_bad="error"`` the first one stops construction with its file and ids;
with ``"skip"`` each is left out and listed in ``Checked.skipped``, so a run is never silently trained
on a different dataset than the user thinks. Everything here reads the json and image *headers* only.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from segkit.data.masks import IGNORE_REGION, ignore_region_problem, segmentation_problem
from segkit.data.json_file import is_int
from segkit.errors import SegkitError

ON_BAD = ("error", "skip")
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass
class Checked:
    images: list[dict[str, Any]]
    anns_by_image: dict[int, list[dict[str, Any]]]
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"image_id", "annotation_id", "reason"}


class _Triage:
    """Raises on the first problem (``error``) or records it (``skip``)."""

    def __init__(self, on_bad: str, ann_file: Path) -> None:
        self.on_bad = on_bad
        self.ann_file = ann_file
        self.skipped: list[dict[str, Any]] = []

    def bad(self, reason: str, image_id: Any = None, annotation_id: Any = None) -> None:
        if self.on_bad == "error":
            ids = f"image id={image_id!r}"
            if annotation_id is not None:
                name = annotation_id if isinstance(annotation_id, str) else f"annotation id={annotation_id!r}"
                ids = f"{name} ({ids})"
            raise SegkitError(f"{self.ann_file}: {ids}: {reason}; fix the json or set "
                              "data.on_bad_annotation='skip' to leave such records out")
        self.skipped.append({"image_id": image_id, "annotation_id": annotation_id, "reason": reason})


def check_coco(
    coco: dict[str, Any],
    ann_file: Path,
    img_root: Path,
    cat_to_index: dict[int, int],
    on_bad: str,
    with_annotations: bool = True,
    img_dir_key: str = "data.img_dir",
) -> Checked:
    """The usable images (json order) and their usable annotations (json order), plus what was skipped."""
    triage = _Triage(on_bad, ann_file)
    images = _checked_images(coco["images"], triage, img_root, img_dir_key)
    anns_by_image: dict[int, list[dict[str, Any]]] = {}
    if with_annotations:
        skipped_images = {entry["image_id"] for entry in triage.skipped}
        anns_by_image = _checked_annotations(coco.get("annotations", []), images, skipped_images, cat_to_index,
                                             triage)
    return Checked(images, anns_by_image, triage.skipped)


def image_file_size(path: Path) -> tuple[int, int] | str:
    """``(width, height)`` as OpenCV will decode the file (EXIF rotation applied), from its header only;
    or why the header cannot be read."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if img.getexif().get(0x0112) in _TRANSPOSING_ORIENTATIONS:
                width, height = height, width
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    return width, height


def _checked_images(images: list[Any], triage: _Triage, img_root: Path, img_dir_key: str) -> list[dict[str, Any]]:
    ids = Counter(img.get("id") for img in images if isinstance(img, dict) and is_int(img.get("id")))
    kept = []
    for pos, img in enumerate(images):
        ok = (
            isinstance(img, dict)
            and is_int(img.get("id"))
            and isinstance(img.get("file_name"), str)
            and is_int(img.get("height"))
            and is_int(img.get("width"))
            and img["height"] > 0
            and img["width"] > 0
        )
        if not ok:
            image_id = img.get("id") if isinstance(img, dict) else None
            triage.bad(f"images[{pos}] needs an integer 'id', a 'file_name' and positive integer 'height'/'width', "
                       f"got {_short(img)}", image_id=image_id if is_int(image_id) else None)
        elif ids[img["id"]] > 1:
            # Which record its annotations belong to is unknowable, so no record with that id is used.
            triage.bad(f"image id {img['id']} is used by {ids[img['id']]} image records (images[{pos}] is "
                       f"{img['file_name']!r}); image ids must be unique", image_id=img["id"])
        else:
            kept.append(img)
    missing = [img["file_name"] for img in kept if not os.path.isfile(img_root / img["file_name"])]
    if missing:  # a wrong img_dir, not a bad record: skipping would silently train on nothing
        raise SegkitError(
            f"{triage.ann_file}: {len(missing)} of {len(kept)} listed images are missing under {img_root}, "
            f"first: {img_root / missing[0]}; check {img_dir_key} and the json's file_name entries"
        )
    usable = []
    for img in kept:
        size = image_file_size(img_root / img["file_name"])
        if isinstance(size, str):
            triage.bad(f"{img_root / img['file_name']} is not a readable image ({size})", image_id=img["id"])
        elif size != (img["width"], img["height"]):
            triage.bad(f"{img_root / img['file_name']} is {size[0]}x{size[1]} (WxH) but the json says "
                       f"{img['width']}x{img['height']}", image_id=img["id"])
        elif IGNORE_REGION in img and (problem := ignore_region_problem(img[IGNORE_REGION], img["height"],
                                                                        img["width"])):
            triage.bad(f"{img['file_name']!r} has a malformed {IGNORE_REGION}: {problem}", image_id=img["id"])
        else:
            usable.append(img)
    return usable


def _checked_annotations(
    anns: Any, images: list[dict[str, Any]], skipped_images: set[Any], cat_to_index: dict[int, int],
    triage: _Triage,
) -> dict[int, list[dict[str, Any]]]:
    if not isinstance(anns, list):
        raise SegkitError(f"{triage.ann_file}: 'annotations' must be a list, got {type(anns).__name__}")
    by_id = {img["id"]: img for img in images}
    seen: set[int] = set()
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for pos, ann in enumerate(anns):
        if not isinstance(ann, dict):
            triage.bad(f"not a dict: {_short(ann)}", annotation_id=f"annotations[{pos}]")
            continue
        ann_id, image_id, cat_id = ann.get("id"), ann.get("image_id"), ann.get("category_id")
        if image_id in skipped_images and is_int(image_id):
            continue  # its image is already reported
        if is_int(ann_id) and ann_id in seen:
            triage.bad(f"annotation id {ann_id} appears again at annotations[{pos}]; annotation ids must be "
                       "unique (the first one is kept)", image_id=image_id, annotation_id=ann_id)
            continue
        if is_int(ann_id):
            seen.add(ann_id)
        where = {"image_id": image_id, "annotation_id": ann_id if ann_id is not None else f"annotations[{pos}]"}
        if not is_int(image_id) or image_id not in by_id:
            triage.bad(f"image_id={image_id!r} is not in 'images'", **where)
        elif not is_int(cat_id) or cat_id not in cat_to_index:
            triage.bad(f"category_id={cat_id!r} is not among the categories (known ids: "
                       f"{_ids(cat_to_index)})", **where)
        else:
            img = by_id[image_id]
            problem = segmentation_problem(ann, img["height"], img["width"])
            if problem is not None:
                triage.bad(f"malformed segmentation: {problem}", **where)
            else:
                by_image[image_id].append(ann)
    return dict(by_image)


def _ids(cat_to_index: dict[int, int]) -> str:
    ids = sorted(cat_to_index)
    return str(ids) if len(ids) <= 12 else f"[{ids[0]}, {ids[1]}, ..., {ids[-1]}] ({len(ids)} ids)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
