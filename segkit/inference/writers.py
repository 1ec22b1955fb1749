"""Per-image outputs of ``infer_tta``: index PNGs, colour PNGs with a legend, float16 probabilities, COCO RLE.

Each file is written through a temp file and renamed (``segkit.paths.atomic_file``), so a stopped run leaves
only whole files. Names mirror the input's row names (sub-folders kept, ``..`` dropped). The COCO results
json is one list streamed record by record to a temp file and renamed when the run finishes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from segkit.data.rle import region_rle
from segkit.errors import SegkitError
from segkit.inference.sources import InputImage
from segkit.paths import StagedFile, atomic_file, relative_output, remove_stale_temps
from segkit.visualization.palette import class_colors, colorize, draw_legend


def check_output_names(images: Sequence[InputImage]) -> None:
    """Two inputs whose per-image files would share a name (``img.jpg`` and ``img.png`` both give
    ``img.png``/``img.npz``) are refused before anything is predicted: the second would overwrite the first."""
    first: dict[Path, InputImage] = {}
    for image in images:
        out = relative_output(image.name, "")
        if out in first:
            raise SegkitError(f"--input: {first[out].path} and {image.path} would both be written as {out}.png/.npz "
                              "(per-image outputs drop the extension); rename one of them")
        first[out] = image


def _write_png(path: Path, picture: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", picture)
    if not ok:
        raise SegkitError(f"could not encode {path} as PNG")
    with atomic_file(path, "wb") as handle:
        handle.write(encoded.tobytes())


class MaskWriter:
    """``DIR/<name>.png``: the class index of every pixel (uint8, values 0..C-1), at the image's size."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def write(self, image: InputImage, labels: np.ndarray, probs: np.ndarray | None = None) -> None:
        _write_png(self.out_dir / relative_output(image.name, ".png"), labels.astype(np.uint8))


class ColorWriter:
    """``DIR/<name>.png``: the mask in segkit's class colours, a legend of the classes present on its right."""

    def __init__(self, out_dir: Path, classes: Sequence[str]) -> None:
        self.out_dir = out_dir
        self.classes = list(classes)
        self.colors = class_colors(len(self.classes))

    def write(self, image: InputImage, labels: np.ndarray, probs: np.ndarray | None = None) -> None:
        mask = labels.astype(np.uint8)
        present = np.flatnonzero(np.bincount(mask.reshape(-1), minlength=len(self.classes)))
        colored = colorize(mask, self.colors)
        legend = draw_legend([self.classes[k] for k in present], self.colors[present],
                             max_height=max(mask.shape[0], 60))
        height = max(colored.shape[0], legend.shape[0])
        canvas = np.full((height, colored.shape[1] + legend.shape[1], 3), 255, np.uint8)
        canvas[:colored.shape[0], :colored.shape[1]] = colored
        canvas[:legend.shape[0], colored.shape[1]:] = legend
        _write_png(self.out_dir / relative_output(image.name, ".png"), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))


class ProbabilityWriter:
    """``DIR/<name>.npz`` with ``probs``: float16 ``(C, H, W)`` class probabilities, and ``classes``."""

    def __init__(self, out_dir: Path, classes: Sequence[str]) -> None:
        self.out_dir = out_dir
        self.classes = np.array(list(classes))

    def write(self, image: InputImage, labels: np.ndarray, probs: np.ndarray | None = None) -> None:
        if probs is None:
            raise ValueError("ProbabilityWriter needs the probabilities")
        with atomic_file(self.out_dir / relative_output(image.name, ".npz"), "wb") as handle:
            np.savez_compressed(handle, probs=probs.astype(np.float16), classes=self.classes)


class CocoResultsWriter:
    """A COCO results json: per image, one RLE per predicted class (Background left out).

    ``category_id`` is the COCO category a class came from when the input had categories, else the class
    index; ``score`` is the mean probability of the class over its pixels. ``pycocotools.COCO.loadRes``
    reads the file (against the input json for COCO inputs).
    """

    def __init__(self, path: str | Path, category_ids: Sequence[int]) -> None:
        self.category_ids = list(category_ids)  # class index -> category id
        remove_stale_temps(path)
        self._file = StagedFile(path, "w")
        self.path = self._file.path
        self._file.handle.write("[")
        self.records = 0

    def write(self, image: InputImage, labels: np.ndarray, probs: np.ndarray | None = None) -> None:
        for k in np.unique(labels):
            if k == 0:
                continue
            region = labels == k
            record = {"image_id": image.image_id, "file_name": image.name, "category_id": self.category_ids[k],
                      "segmentation": region_rle(region), "area": int(region.sum())}
            if probs is not None:
                record["score"] = round(float(probs[k][region].mean()), 6)
            self._file.handle.write(("," if self.records else "") + "\n" + json.dumps(record))
            self.records += 1

    def close(self) -> Path:
        self._file.handle.write("\n]\n")
        return self._file.commit()

    def abort(self) -> None:
        self._file.abort()
