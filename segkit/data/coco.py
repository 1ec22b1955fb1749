"""A COCO json + image folder as (uint8 image, uint8 class mask) samples.

Everything that can be checked without decoding pixels is checked at construction (paths, json
structure, file existence, category and image ids), so a broken dataset fails before training starts
rather than in a worker process hours in. Images stay uint8 all the way to the device: the trainer
converts and normalises there, which keeps worker memory and host-to-device copies four times smaller.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from segkit.data.masks import class_index_map, rasterize
from segkit.data.transforms import build_pipeline
from segkit.errors import SegkitError


class CocoSegDataset(Dataset):
    """Semantic-segmentation samples from a COCO json; see ``segkit.data.masks`` for the class rule."""

    def __init__(
        self,
        root: str | Path,
        ann: str = "train.json",
        img_dir: str = "images",
        pipeline: list[dict] | None = None,
        test_mode: bool = False,
        where: str = "data.train",
    ) -> None:
        section = where.rpartition(".")[0]
        root_key, img_dir_key = (f"{section}.{k}" if section else k for k in ("root", "img_dir"))
        self.root = Path(root)
        if not self.root.is_dir():
            raise SegkitError(
                f"{root_key}: dataset folder {self.root} does not exist; check {root_key} "
                "(or run `make demo` to create the demo dataset)"
            )
        self.ann_file = self.root / ann
        if not self.ann_file.is_file():
            raise SegkitError(
                f"{where}.ann: annotation file {self.ann_file} not found; check {root_key} and {where}.ann "
                "(or run `make demo` to create the demo dataset)"
            )
        self.img_root = self.root / img_dir
        self.test_mode = test_mode

        coco = _load_json(self.ann_file)
        for key in ("images", "categories") if test_mode else ("images", "categories", "annotations"):
            if not isinstance(coco.get(key), list):
                raise SegkitError(f"{self.ann_file}: missing or non-list {key!r}; expected a COCO json")
        try:
            self.classes, self.cat_to_index = class_index_map(coco["categories"])
        except SegkitError as err:
            raise SegkitError(f"{self.ann_file}: {err}") from err
        self.num_classes = len(self.classes)
        self.images = _checked_images(coco["images"], self.ann_file, self.img_root, img_dir_key)
        self.anns_by_image = _index_annotations(
            coco.get("annotations", []), self.images, self.cat_to_index, self.ann_file
        )
        self.pipeline = build_pipeline(pipeline, where=f"{where}.pipeline")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        info = self.images[i]
        height, width = info["height"], info["width"]
        path = self.img_root / info["file_name"]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SegkitError(f"cannot read image {path} (listed in {self.ann_file}); is it a valid image?")
        if bgr.shape[:2] != (height, width):
            raise SegkitError(
                f"image {path} is {bgr.shape[1]}x{bgr.shape[0]} (WxH) but {self.ann_file} says "
                f"{width}x{height}; fix the json's width/height or the image"
            )
        sample: dict[str, Any] = {"image": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)}
        if not self.test_mode:
            try:
                anns = self.anns_by_image.get(info["id"], [])
                sample["mask"] = rasterize(anns, height, width, self.cat_to_index)
            except SegkitError as err:
                raise SegkitError(f"{self.ann_file}: {err}") from err
        if self.pipeline is not None:
            sample = self.pipeline(**sample)
        out: dict[str, Any] = {
            "image": torch.from_numpy(np.ascontiguousarray(sample["image"].transpose(2, 0, 1))),
            "image_id": info["id"],
            "file_name": info["file_name"],
            "height": height,
            "width": width,
        }
        if not self.test_mode:
            out["mask"] = torch.from_numpy(np.ascontiguousarray(sample["mask"], dtype=np.uint8))
        return out


def _load_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise SegkitError(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from err
    except UnicodeDecodeError as err:
        raise SegkitError(f"{path}: not UTF-8 text ({err.reason}); expected a COCO json") from err
    if not isinstance(data, dict):
        raise SegkitError(f"{path}: top level is a {type(data).__name__}; expected a COCO json object")
    return data


def _checked_images(
    images: list[Any], ann_file: Path, img_root: Path, img_dir_key: str
) -> list[dict[str, Any]]:
    """The image records, each with an int id, a file name and a positive size; all files present."""
    seen: set[int] = set()
    for pos, img in enumerate(images):
        ok = (
            isinstance(img, dict)
            and _is_int(img.get("id"))
            and isinstance(img.get("file_name"), str)
            and _is_int(img.get("height"))
            and _is_int(img.get("width"))
            and img["height"] > 0
            and img["width"] > 0
        )
        if not ok:
            raise SegkitError(
                f"{ann_file}: images[{pos}] needs an integer 'id', a 'file_name' and positive integer "
                f"'height'/'width', got {img!r}"
            )
        if img["id"] in seen:
            raise SegkitError(f"{ann_file}: image id {img['id']} appears twice; image ids must be unique")
        seen.add(img["id"])
    missing = [img["file_name"] for img in images if not os.path.isfile(img_root / img["file_name"])]
    if missing:
        raise SegkitError(
            f"{ann_file}: {len(missing)} of {len(images)} listed images are missing under {img_root}, "
            f"first: {img_root / missing[0]}; check {img_dir_key} and the json's file_name entries"
        )
    return images


def _index_annotations(
    anns: list[Any], images: list[dict[str, Any]], cat_to_index: dict[int, int], ann_file: Path
) -> dict[int, list[dict[str, Any]]]:
    """Annotations grouped by image id, after checking every image and category id they refer to."""
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    image_ids = {img["id"] for img in images}
    for pos, ann in enumerate(anns):
        if not isinstance(ann, dict):
            raise SegkitError(f"{ann_file}: annotations[{pos}] is not a dict: {ann!r}")
        cat_id, image_id = ann.get("category_id"), ann.get("image_id")
        if not _is_int(cat_id) or cat_id not in cat_to_index:
            raise SegkitError(
                f"{ann_file}: annotation id={ann.get('id')!r} has category_id={cat_id!r}, which is not among "
                f"the categories (known ids: {sorted(cat_to_index)})"
            )
        if not _is_int(image_id) or image_id not in image_ids:
            raise SegkitError(
                f"{ann_file}: annotation id={ann.get('id')!r} refers to image_id={image_id!r}, which is not "
                "in 'images'"
            )
        by_image[image_id].append(ann)
    return dict(by_image)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
