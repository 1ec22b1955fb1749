"""The validation leak guard: no validation image among the training images or the images to pseudo-label.

A pseudo-label of a validation image is the teacher's answer to a validation question; training on it makes
the validation score lie. An image counts as a validation image when it is the same file (the same resolved
path) or has the same content (SHA-256 of the file bytes, :mod:`segkit.data.file_hashes`), so a copy under
another name or in another folder is caught as well.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segkit.data.file_hashes import FileHashes
from segkit.data.mask_cache import default_cache_dir
from segkit.errors import SegkitError

_log = logging.getLogger("segkit.data")


@dataclass(frozen=True)
class ImageSet:
    """Images as names under one folder, and how messages call the set (``data.val.ann (val.json)``)."""

    folder: Path
    names: Sequence[str]
    label: str


@dataclass(frozen=True)
class Leak:
    name: str  # the candidate image
    held_out: str  # the validation image it is
    how: str  # "the same file" or "the same content"


def dataset_images(dataset: Any, label: str) -> ImageSet:
    """The image files of a :class:`~segkit.data.coco.CocoSegDataset`."""
    return ImageSet(dataset.img_root, [info["file_name"] for info in dataset.images], label)


def hash_cache_root(data: Any) -> Path | None:
    """Where file hashes are cached: the mask cache's root (``data.cache_dir`` or the default); None when
    ``data.cache`` is off."""
    if not data.cache:
        return None
    return Path(data.cache_dir).expanduser() if data.cache_dir is not None else default_cache_dir()


class HeldOut:
    """The validation images, indexed by resolved path and by content hash."""

    def __init__(self, images: ImageSet, hashes: FileHashes) -> None:
        self.images = images
        self.hashes = hashes
        self.by_path = {os.path.realpath(images.folder / name): name for name in images.names}
        self.by_digest = dict(zip(hashes.digests(images.folder, images.names), images.names))

    def leaks(self, candidates: ImageSet, digests: Sequence[str] | None = None) -> list[Leak]:
        """The candidates that are validation images; ``digests`` (the candidates' SHA-256) when known."""
        found = []
        if digests is None:
            digests = self.hashes.digests(candidates.folder, candidates.names)
        for name, digest in zip(candidates.names, digests):
            same_file = self.by_path.get(os.path.realpath(candidates.folder / name))
            if same_file is not None:
                found.append(Leak(name, same_file, "the same file"))
            elif digest in self.by_digest:
                found.append(Leak(name, self.by_digest[digest], "the same content"))
        return found

    def describe(self, leaks: list[Leak], candidates: ImageSet) -> str:
        first = leaks[0]
        return (f"{len(leaks)} of the {len(candidates.names)} images of {candidates.label} are validation images of "
                f"{self.images.label} (first: {first.name} is {first.held_out}, {first.how})")


def check_training_sources(train_set: Any, val_set: Any, data: Any, progress: bool = False) -> None:
    """Refuse a training source (``data.train.ann`` or any of ``data.train.sources``) holding validation images.

    Training on nothing but the validation json (the same file, as the only source) is a deliberate choice, e.g.
    a smoke test on a single annotated export, not a leak: it is named in a warning instead. Among several
    sources the validation json is a leak like any other (it would mix validation images into real training).
    """
    parts = getattr(train_set, "parts", None) or [train_set]
    keys = getattr(train_set, "keys", None) or ["data.train.ann"]
    held_out = HeldOut(dataset_images(val_set, f"data.val.ann ({val_set.ann_file})"),
                       FileHashes(hash_cache_root(data), progress))
    for part, key in zip(parts, keys):
        if len(parts) == 1 and Path(part.ann_file).resolve() == Path(val_set.ann_file).resolve():
            _log.warning("%s and data.val.ann are the same json (%s): the validation score measures the fit to "
                         "the training images, not generalisation", key, val_set.ann_file)
            continue
        candidates = dataset_images(part, f"{key} ({part.ann_file})")
        leaks = held_out.leaks(candidates)
        if leaks:
            raise SegkitError(f"{held_out.describe(leaks, candidates)}; training on validation images makes the "
                              "validation score lie: remove them from the training source (tools/pseudo_label.py "
                              "refuses them unless --allow-val) or validate on another split")
