"""Copy-paste of rare-class objects from other training images, before the augmentation pipeline.

A rare class seen in a handful of photos is learned from a handful of contexts. Pasting its objects onto
other training images (image pixels and mask labels together) shows it in many. The donor index is built
once from the annotations' category ids, so construction decodes no mask; a donor's mask is rasterised
only when it is used, and its annotation is read again then (the index holds positions, not objects). What gets pasted is the donor mask's pixels of the class inside the chosen
annotation's box and (for polygons) its outline grown by one pixel: the mask, not the polygon, so an
object partly hidden under another keeps only its visible part, and the outline, so another object of
the same class reaching into the box stays behind.

Randomness: each sample draws from ``numpy.random.default_rng([torch.initial_seed(), index])``. segkit's
loader reseeds torch per sample from (run seed, epoch, index) (``segkit.data.sampling``), and DataLoader
workers reseed per epoch, so a sample's pastes are reproducible for a given seed and change every epoch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from segkit.errors import SegkitError
from segkit.registry import closest

_KEYS = ("classes", "p", "max_objects")
_log = logging.getLogger("segkit.data")


class CopyPaste(Dataset):
    """Wraps a dataset with ``load_raw(i)``/``to_sample(image, mask, info)``, ``annotations(i)`` and
    ``annotation_classes(i)`` (``CocoSegDataset``, or several training sources as one ``SourceSet``).

    With probability ``p`` a sample gets between 1 and ``max_objects`` objects, each of a class drawn
    uniformly from ``classes`` (names from ``dataset.classes``) and taken from a random other image that
    contains it. Objects keep their size relative to the image (shrunk if they would not fit) and land at
    a uniformly random position. Other attributes (``classes``, ``pipeline``, ...) are the wrapped dataset's.
    """

    def __init__(self, dataset: Any, classes: list[str], p: float = 0.5, max_objects: int = 3,
                 where: str = "data.train.copy_paste") -> None:
        self.dataset = dataset
        self.p = p
        self.max_objects = max_objects
        self.class_ids = [_class_index(name, dataset.classes, f"{where}.classes") for name in classes]
        self.donors = _donor_index(dataset, self.class_ids)
        source = getattr(dataset, "ann_file", "the training set")
        if not any(len(rows) for rows in self.donors.values()):
            raise SegkitError(f"{where}.classes: none of {list(classes)} has an object in {source}; choose "
                              "classes that occur")
        for name, class_id in zip(classes, self.class_ids):
            if not len(self.donors[class_id]):
                _log.warning("%s.classes: %r has no object in %s; it is never pasted", where, name, source)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (e.g. while unpickling): avoid recursing into ourselves
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, i: int) -> dict[str, Any]:
        image, mask, info = self.dataset.load_raw(i)
        rng = np.random.default_rng([torch.initial_seed(), i])
        if rng.random() < self.p:
            image, mask = image.copy(), mask.copy()
            for _ in range(int(rng.integers(1, self.max_objects + 1))):
                self._paste_one(image, mask, i, rng)
        return self.dataset.to_sample(image, mask, info)

    def _paste_one(self, image: np.ndarray, mask: np.ndarray, i: int, rng: np.random.Generator) -> None:
        """Paste one object of a configured class from another image into ``image``/``mask`` in place."""
        usable = [c for c in self.class_ids if (self.donors[c][:, 0] != i).any()]
        if not usable:
            return
        class_id = usable[int(rng.integers(len(usable)))]
        choices = self.donors[class_id][self.donors[class_id][:, 0] != i]
        donor_pos, k = (int(v) for v in choices[int(rng.integers(len(choices)))])
        donor_image, donor_mask, _ = self.dataset.load_raw(donor_pos)
        ann = self.dataset.annotations(donor_pos)[k]
        cut = _crop_object(donor_image, donor_mask, class_id, ann)
        if cut is None:  # hidden entirely under other objects
            return
        patch, patch_mask = _fit(*cut, donor_mask.shape, mask.shape)
        h, w = patch_mask.shape
        y = int(rng.integers(mask.shape[0] - h + 1))
        x = int(rng.integers(mask.shape[1] - w + 1))
        image[y : y + h, x : x + w][patch_mask] = patch[patch_mask]
        mask[y : y + h, x : x + w][patch_mask] = class_id


def wrap_copy_paste(dataset: Any, cfg: Mapping[str, Any] | None,
                    where: str = "data.train.copy_paste") -> Any:
    """``dataset`` itself when ``cfg`` is None, else a checked :class:`CopyPaste` around it."""
    if cfg is None:
        return dataset
    if not isinstance(cfg, Mapping):
        raise SegkitError(f"{where} must be None or a dict like dict(classes=['Battery'], p=0.5, max_objects=3), "
                          f"got {cfg!r}")
    for key in cfg:
        if key not in _KEYS:
            raise SegkitError(f"{where}: unknown key {key!r}{closest(str(key), list(_KEYS))} (keys: "
                              f"{', '.join(_KEYS)})")
    classes, p, max_objects = cfg.get("classes"), cfg.get("p", 0.5), cfg.get("max_objects", 3)
    if not isinstance(classes, list | tuple) or not classes or not all(isinstance(c, str) for c in classes):
        raise SegkitError(f"{where}.classes must be a non-empty list of class names, got {classes!r}")
    if type(p) not in (int, float) or not 0.0 <= p <= 1.0:
        raise SegkitError(f"{where}.p must be a probability in [0, 1], got {p!r}")
    if type(max_objects) is not int or max_objects < 1:
        raise SegkitError(f"{where}.max_objects must be a positive int, got {max_objects!r}")
    return CopyPaste(dataset, list(classes), p=float(p), max_objects=max_objects, where=where)


def _class_index(name: str, classes: list[str], where: str) -> int:
    if name not in classes[1:]:
        why = "Background cannot be pasted" if name == classes[0] else f"{name!r} is not a class"
        same = [c for c in classes[1:] if c.lower() == name.lower()]
        hint = f"; did you mean {same[0]!r}?" if same else closest(name, classes[1:])
        raise SegkitError(f"{where}: {why}{hint} (classes: {', '.join(classes[1:])})")
    return classes.index(name)


def _donor_index(dataset: Any, class_ids: list[int]) -> dict[int, np.ndarray]:
    """Per class: ``(image position, annotation position in that image)`` rows of every non-crowd annotation of
    that class, as int64 arrays (no Python objects for DataLoader workers to copy, see ``segkit.data.serialized``)."""
    donors: dict[int, list[tuple[int, int]]] = {c: [] for c in class_ids}
    for pos in range(len(dataset)):
        for k, (ann, index) in enumerate(zip(dataset.annotations(pos), dataset.annotation_classes(pos))):
            if index in donors and not ann.get("iscrowd"):
                donors[index].append((pos, k))
    return {c: np.array(rows, dtype=np.int64).reshape(-1, 2) for c, rows in donors.items()}


def _box(ann: dict, height: int, width: int) -> tuple[int, int, int, int]:
    """The annotation's bbox as integer ``x0, y0, x1, y1`` in the image; the whole image if it has none."""
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list | tuple) and len(bbox) == 4
            and all(type(v) in (int, float) and math.isfinite(v) for v in bbox)):
        return 0, 0, width, height
    x, y, w, h = bbox
    x0, y0 = max(int(math.floor(x)), 0), max(int(math.floor(y)), 0)
    x1, y1 = min(int(math.ceil(x + w)), width), min(int(math.ceil(y + h)), height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else (0, 0, width, height)


def _outline(ann: dict, x0: int, y0: int, height: int, width: int) -> np.ndarray | None:
    """The annotation's polygons filled (and grown by a pixel) in box coordinates; None for RLE and the like."""
    segm = ann.get("segmentation")
    if not isinstance(segm, list):
        return None
    parts = [np.round(np.asarray(p, np.float64).reshape(-1, 2) - (x0, y0)).astype(np.int32)
             for p in segm if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
    if not parts:
        return None
    region = np.zeros((height, width), np.uint8)
    cv2.fillPoly(region, parts, 1)
    return cv2.dilate(region, np.ones((3, 3), np.uint8)).astype(bool)


def _crop_object(image: np.ndarray, mask: np.ndarray, class_id: int,
                 ann: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """The object's visible class pixels, cropped to their own extent; None if none are visible."""
    x0, y0, x1, y1 = _box(ann, *mask.shape)
    keep = mask[y0:y1, x0:x1] == class_id
    outline = _outline(ann, x0, y0, y1 - y0, x1 - x0)
    if outline is not None:
        keep &= outline
    rows, cols = np.flatnonzero(keep.any(axis=1)), np.flatnonzero(keep.any(axis=0))
    if rows.size == 0:
        return None
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return image[y0 + r0 : y0 + r1, x0 + c0 : x0 + c1], keep[r0:r1, c0:c1]


def _fit(patch: np.ndarray, keep: np.ndarray, donor_shape: tuple[int, ...],
         target_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rescale by the images' size ratio (same size relative to the image), then shrink to fit if needed."""
    scale = min(target_shape[0] / donor_shape[0], target_shape[1] / donor_shape[1])
    scale = min(scale, target_shape[0] / keep.shape[0], target_shape[1] / keep.shape[1])
    if scale == 1.0:
        return patch, keep
    size = (max(1, min(target_shape[1], round(keep.shape[1] * scale))),
            max(1, min(target_shape[0], round(keep.shape[0] * scale))))
    resized = cv2.resize(keep.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(patch, size, interpolation=interp), resized
