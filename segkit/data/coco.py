"""A COCO json + image folder as (uint8 image, uint8 class mask) samples.

Everything that can be checked without decoding pixels is checked at construction (paths, json
structure, file existence and header sizes, category and image ids, every segmentation), so a broken
dataset fails before training starts rather than in a worker process hours in; with
``on_bad_annotation="skip"`` bad records are left out instead and listed in ``dataset.skipped``.
Masks are rasterised once and then read from the mask cache (``segkit.data.mask_cache``), under keys
hashed once here in the parent process. Image records and annotations are kept pickled in NumPy buffers
(``segkit.data.serialized``), so DataLoader workers read them without copying the parent's memory. Images
stay uint8 all the way to the device: the trainer converts and normalises there, which keeps worker memory
and host-to-device copies four times smaller.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from segkit.data.classes import IGNORE_INDEX, check_ignore_index, class_index_map
from segkit.data.coco_checks import ON_BAD, check_coco
from segkit.data.image_file import ImageDecodeError, read_rgb
from segkit.data.json_file import read_json_object
from segkit.data.mask_cache import MaskCache, default_cache_dir, mask_key
from segkit.data.masks import CROWD_MODES, IGNORE_REGION, OVERLAP_POLICIES, rasterize
from segkit.data.serialized import RecordsById, SerializedList
from segkit.data.transforms import build_pipeline
from segkit.errors import SegkitError

_log = logging.getLogger("segkit.data")


class CocoSegDataset(Dataset):
    """Semantic-segmentation samples from a COCO json.

    ``classes``, ``overlap``, ``crowd``, ``ignore_index``, ``on_bad_annotation``, ``cache`` and ``cache_dir``
    are the ``data.*`` config keys of the same names (see docs/data.md). ``report`` is where a skip report goes;
    by default it is written next to the mask cache, and its path is ``dataset.skip_report``. ``where`` is the
    config key of the json (``data.train``, ``data.train.sources[1]``), ``img_dir_key`` the one of its image
    folder (default ``data.img_dir``), for error messages.
    """

    def __init__(
        self,
        root: str | Path,
        ann: str = "train.json",
        img_dir: str = "images",
        pipeline: list[dict] | None = None,
        test_mode: bool = False,
        where: str = "data.train",
        classes: Any = None,
        overlap: str = "area_desc",
        crowd: str = "paint",
        ignore_index: int = IGNORE_INDEX,
        on_bad_annotation: str = "error",
        cache: bool = True,
        cache_dir: str | Path | None = None,
        report: str | Path | None = None,
        img_dir_key: str | None = None,
    ) -> None:
        section = where.split(".")[0] if "." in where else ""  # "data" of "data.train" or "data.train.sources[1]"
        key = {k: f"{section}.{k}" if section else k for k in (
            "root", "img_dir", "classes", "overlap", "crowd", "ignore_index", "on_bad_annotation", "cache",
            "cache_dir")}
        key["img_dir"] = img_dir_key or key["img_dir"]
        self.ignore_index = check_ignore_index(ignore_index, key["ignore_index"])
        _check_choice(overlap, OVERLAP_POLICIES, key["overlap"])
        _check_choice(crowd, CROWD_MODES, key["crowd"])
        _check_choice(on_bad_annotation, ON_BAD, key["on_bad_annotation"])
        if not isinstance(cache, bool):
            raise SegkitError(f"{key['cache']} must be True or False, got {cache!r}")
        if cache_dir is not None and not isinstance(cache_dir, str | Path):
            raise SegkitError(f"{key['cache_dir']} must be a folder path or None, got {cache_dir!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise SegkitError(
                f"{key['root']}: dataset folder {self.root} does not exist; check {key['root']} "
                "(or run `make demo` to create the demo dataset)"
            )
        self.ann_file = self.root / ann
        if not self.ann_file.is_file():
            raise SegkitError(
                f"{where}.ann: annotation file {self.ann_file} not found; check {key['root']} and {where}.ann "
                "(or run `make demo` to create the demo dataset)"
            )
        self.img_root = self.root / img_dir
        self.test_mode = test_mode
        self.overlap = overlap
        self.crowd = crowd

        coco = read_json_object(self.ann_file)
        for name in ("images", "categories") if test_mode else ("images", "categories", "annotations"):
            if not isinstance(coco.get(name), list):
                raise SegkitError(f"{self.ann_file}: missing or non-list {name!r}; expected a COCO json")
        try:
            self.classes, self.cat_to_index = class_index_map(
                coco["categories"], classes, where=key["classes"], ignore_index=self.ignore_index,
                ignore_key=key["ignore_index"])
        except SegkitError as err:
            raise SegkitError(f"{self.ann_file}: {err}") from err
        self.num_classes = len(self.classes)
        checked = check_coco(coco, self.ann_file, self.img_root, self.cat_to_index, on_bad_annotation,
                             with_annotations=not test_mode, img_dir_key=key["img_dir"])
        self.skipped = checked.skipped
        self.pipeline = build_pipeline(pipeline, where=f"{where}.pipeline", ignore_index=self.ignore_index)
        cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.cache = self._open_cache(cache_root, explicit=cache_dir is not None, where=key["cache_dir"]) \
            if cache and not test_mode else None
        self.skip_report = self._write_skip_report(report, cache_root) if self.skipped else None
        anns = [checked.anns_by_image.get(info["id"], []) for info in checked.images]
        # Keys hashed once here: workers inherit the array instead of hashing (and holding) their own.
        self._mask_keys = None if self.cache is None else np.array(
            [mask_key(a, info["height"], info["width"], self.cat_to_index, overlap, crowd, self.ignore_index,
                      info.get(IGNORE_REGION)) for a, info in zip(anns, checked.images)], dtype="S32")
        self.images = SerializedList(checked.images)  # images[i] is the json's image record (a fresh dict)
        self._annotations = SerializedList(anns)
        self.anns_by_image = RecordsById([info["id"] for info in checked.images], self._annotations)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.to_sample(*self.load_raw(i))

    def load_raw(self, i: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """RGB uint8 image, uint8 class mask (zeros in test mode) and the image record, before augmentation.

        Batch-level augmentations (CutMix, copy-paste) combine raw samples of several images and then
        finish each one with ``to_sample``.
        """
        info = self.images[i]
        height, width = info["height"], info["width"]
        path = self.img_root / info["file_name"]
        try:
            image, _ = read_rgb(path)
        except ImageDecodeError as err:
            raise SegkitError(f"cannot read image {path} (listed in {self.ann_file}): {err}; replace or remove "
                              "the file") from err
        if image.shape[:2] != (height, width):
            raise SegkitError(
                f"image {path} is {image.shape[1]}x{image.shape[0]} (WxH) but {self.ann_file} says "
                f"{width}x{height}; fix the json's width/height or the image"
            )
        if self.test_mode:
            return image, np.zeros((height, width), np.uint8), info
        return image, self.mask(i), info

    def to_sample(self, image: np.ndarray, mask: np.ndarray, info: dict[str, Any]) -> dict[str, Any]:
        """Apply the pipeline and build the sample dict: uint8 CHW image tensor, uint8 HW mask tensor."""
        sample: dict[str, Any] = {"image": image} if self.test_mode else {"image": image, "mask": mask}
        if self.pipeline is not None:
            sample = self.pipeline(**sample)
        out: dict[str, Any] = {
            "image": torch.from_numpy(np.ascontiguousarray(sample["image"].transpose(2, 0, 1))),
            "image_id": info["id"],
            "file_name": info["file_name"],
            "height": info["height"],
            "width": info["width"],
        }
        if not self.test_mode:
            out["mask"] = torch.from_numpy(np.ascontiguousarray(sample["mask"], dtype=np.uint8))
        return out

    def annotations(self, i: int) -> list[dict[str, Any]]:
        """The checked annotations of the ``i``-th image, in json order (fresh objects on every call)."""
        return self._annotations[i]

    def annotation_classes(self, i: int) -> list[int]:
        """The class index of each of the ``i``-th image's annotations, in json order."""
        return [self.cat_to_index[ann["category_id"]] for ann in self.annotations(i)]

    def mask(self, i: int) -> np.ndarray:
        """The image's class mask, from the cache when it holds one (without decoding the image)."""
        info = self.images[i]
        if self._mask_keys is None:
            return self._rasterize(i, info)
        key = self._mask_keys[i].decode("ascii")
        mask = self.cache.load(key, info["height"], info["width"])
        if mask is None:
            mask = self._rasterize(i, info)
            self.cache.save(key, mask)
        return mask

    def _rasterize(self, i: int, info: dict[str, Any]) -> np.ndarray:
        return rasterize(self.annotations(i), info["height"], info["width"], self.cat_to_index, self.overlap,
                         self.crowd, self.ignore_index, info.get(IGNORE_REGION))

    @staticmethod
    def _open_cache(root: Path, explicit: bool, where: str) -> MaskCache | None:
        """An unusable folder the user chose is an error; an unusable default only costs speed."""
        try:
            return MaskCache(root, where=where)
        except SegkitError as err:
            if explicit:
                raise
            _log.warning("%s; masks will be rebuilt every epoch", err)
            return None

    def _write_skip_report(self, report: str | Path | None, cache_root: Path) -> Path | None:
        """JSON list of what was skipped; the trainer copies it into the work dir."""
        if report is None:
            digest = hashlib.blake2b(str(self.ann_file.resolve()).encode(), digest_size=4).hexdigest()
            report = cache_root / "skipped" / f"{self.ann_file.stem}-{digest}.json"
        path = Path(report)
        images = sum(1 for entry in self.skipped if entry["annotation_id"] is None)
        summary = (f"{self.ann_file}: skipped {images} image(s) and {len(self.skipped) - images} annotation(s) "
                   "(data.on_bad_annotation='skip')")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"ann_file": str(self.ann_file), "skipped": self.skipped}, f, indent=1)
            os.replace(tmp, path)
        except OSError as err:
            _log.warning("%s; could not write the report to %s (%s)", summary, path, err.strerror or err)
            return None
        _log.warning("%s; report: %s", summary, path)
        return path


def _check_choice(value: Any, choices: tuple[str, ...], key: str) -> None:
    if value not in choices:
        raise SegkitError(f"{key} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
