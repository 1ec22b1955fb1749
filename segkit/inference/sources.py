"""What to predict: an image folder, a COCO json (only its ``images`` are needed) or one image.

Every input is listed and its header read before any prediction starts, so an empty folder, a missing file
or a non-image is reported before anything is written. Row names are what a submission calls the image: the
COCO ``file_name``, or the path relative to the folder. With ``on_bad="skip"`` unreadable inputs are left
out and listed in :attr:`ImageSource.skipped` instead of stopping the run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from segkit.data.coco_checks import image_file_size
from segkit.data.image_file import ImageDecodeError, read_rgb
from segkit.data.json_file import is_int, read_json_object
from segkit.errors import SegkitError

ON_BAD_IMAGE = ("error", "skip")
_FLAG = "--on-bad-image"


@dataclass(frozen=True)
class InputImage:
    name: str  # the row name: COCO file_name, or the path relative to the input folder
    path: Path
    image_id: int  # COCO id, or the 1-based position for folders and single images
    height: int
    width: int


class ImageSource(Dataset):
    """The readable inputs in order; items are ``(index, uint8 (3, H, W) RGB tensor)`` or ``(index, reason)``."""

    def __init__(self, images: list[InputImage], description: str, on_bad: str = "error",
                 categories: list[dict] | None = None, skipped: list[dict[str, str]] | None = None) -> None:
        self.images = images
        self.description = description
        self.on_bad = on_bad
        self.categories = categories  # the COCO json's categories, when it has them
        self.skipped = list(skipped or [])  # {"name", "path", "reason"}
        self.noted = 0  # decoded images that came with a warning (see decoded)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | str, str]:
        """``(index, image or why it is bad, a note about the image or "")``."""
        info = self.images[index]
        try:
            rgb, note = read_rgb(info.path)
        except ImageDecodeError as err:
            return index, str(err), ""
        if rgb.shape[:2] != (info.height, info.width):
            header = f"{info.width}x{info.height}"
            return index, f"decodes to {rgb.shape[1]}x{rgb.shape[0]} (WxH), its header says {header}", ""
        return index, torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))), note or ""

    def decoded(self, num_workers: int = 0) -> Iterator[tuple[InputImage, torch.Tensor]]:
        """Decoded images in input order (decoded by ``num_workers`` processes ahead of the model).

        A truncated or undecodable file is a bad image (:attr:`on_bad`); the first image with a note (a
        16-bit image using little of its range) is named in a warning on stderr, the others counted in
        :attr:`noted`.
        """
        loader = DataLoader(self, batch_size=None, num_workers=num_workers, worker_init_fn=_one_cv2_thread)
        for index, item, note in loader:
            info = self.images[index]
            if isinstance(item, str):
                _bad(self.on_bad, self.skipped, info.name, info.path, item)
                continue
            if note:
                if not self.noted:
                    print(f"segkit: warning: {info.path}: {note} (further such images are only counted)",
                          file=sys.stderr)
                self.noted += 1
            yield info, item


def open_source(path: str | Path, on_bad: str = "error", recursive: bool = False,
                img_dir: str | Path | None = None) -> ImageSource:
    """``path`` is a folder, a ``.json`` COCO file (images under ``img_dir``, default: the json's folder)
    or a single image file."""
    if on_bad not in ON_BAD_IMAGE:
        raise SegkitError(f"{_FLAG} {on_bad!r}: use one of {', '.join(ON_BAD_IMAGE)}")
    path = Path(path)
    if path.is_dir():
        source = _folder(path, on_bad, recursive)
    elif path.suffix.lower() == ".json" and path.is_file():
        source = _coco(path, on_bad, Path(img_dir) if img_dir is not None else path.parent)
    elif path.is_file():
        source = _listed([(path.name, path, 1, None)], str(path), on_bad)
    else:
        raise SegkitError(f"--input {path}: no such file or folder")
    if not source.images:
        raise SegkitError(f"--input {path}: no readable image in {source.description}"
                          + (f" ({len(source.skipped)} skipped, first: {source.skipped[0]['reason']})"
                             if source.skipped else ""))
    return source


def _folder(folder: Path, on_bad: str, recursive: bool) -> ImageSource:
    files = sorted(p for p in (folder.rglob("*") if recursive else folder.iterdir())
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    where = f"folder {folder}" + (" (recursive)" if recursive else " (add --recursive for sub-folders)")
    if not files:
        raise SegkitError(f"--input {folder}: the folder holds no files"
                          + ("" if recursive else "; add --recursive to search its sub-folders"))
    entries = [(p.relative_to(folder).as_posix(), p, k + 1, None) for k, p in enumerate(files)]
    return _listed(entries, where, on_bad)


def _coco(json_path: Path, on_bad: str, img_root: Path) -> ImageSource:
    coco = read_json_object(json_path)
    images = coco.get("images")
    if not isinstance(images, list) or not images:
        raise SegkitError(f"--input {json_path}: needs a non-empty 'images' list (COCO format)")
    entries = []
    for pos, img in enumerate(images):
        if not isinstance(img, dict) or not isinstance(img.get("file_name"), str):
            raise SegkitError(f"--input {json_path}: images[{pos}] needs a 'file_name', got {img!r:.80}")
        image_id = img.get("id", pos + 1)
        if not is_int(image_id):
            raise SegkitError(f"--input {json_path}: images[{pos}] has a non-integer id {image_id!r}")
        size = (img["width"], img["height"]) if is_int(img.get("width")) and is_int(img.get("height")) else None
        entries.append((img["file_name"], img_root / img["file_name"], image_id, size))
    missing = [e for e in entries if not e[1].is_file()]
    if len(missing) == len(entries):
        raise SegkitError(f"--input {json_path}: none of its {len(entries)} images is under {img_root} (first: "
                          f"{missing[0][1]}); point --img-dir at the folder the file_name entries are relative to")
    categories = coco.get("categories") if isinstance(coco.get("categories"), list) else None
    return _listed(entries, f"{json_path} (images under {img_root})", on_bad, categories)


def _listed(entries: list[tuple[str, Path, int, Any]], where: str, on_bad: str,
            categories: list[dict] | None = None) -> ImageSource:
    """Read every header; entries are (name, path, image id, (width, height) the json claims or None)."""
    images, skipped = [], []
    for name, path, image_id, claimed in entries:
        size = image_file_size(path) if path.is_file() else "file not found"
        if isinstance(size, tuple) and claimed is not None and size != claimed:
            size = f"is {size[0]}x{size[1]} (WxH) but the json says {claimed[0]}x{claimed[1]}"
        if isinstance(size, str):
            _bad(on_bad, skipped, name, path, f"not a readable image ({size})")
        else:
            images.append(InputImage(name, path, image_id, height=size[1], width=size[0]))
    return ImageSource(images, where, on_bad, categories, skipped)


def _bad(on_bad: str, skipped: list[dict[str, str]], name: str, path: Path, reason: str) -> None:
    if on_bad == "error":
        raise SegkitError(f"--input: {path}: {reason}; remove it or pass {_FLAG} skip to leave such files out")
    skipped.append({"name": name, "path": str(path), "reason": reason})


def _one_cv2_thread(_: int) -> None:
    cv2.setNumThreads(0)
