"""Pseudo-labels: a teacher's confident predictions of unlabelled images as a COCO json a student trains on.

One pass predicts every image with the :class:`~segkit.inference.predictor.Predictor` (ensembles, TTA,
windows) and fills the per-class confidence histograms (:mod:`segkit.inference.confidence`). With a global
threshold each mask is finished in that pass. Class-balanced thresholds need every image's confidences first,
so that pass stores each image's labels (uint8) and doubts (float16 ``1 - p``) in a temporary folder, and a second
pass over the stored maps (no second forward) finishes the masks: memory stays at one image and the
histograms, whatever the number of images.

The json (:class:`PseudoLabelWriter`) holds the training json's categories; per image one RLE annotation per
predicted class other than Background (confident Background is simply unannotated, i.e. class 0), and the
unconfident pixels as the image record's ``ignore_rle``, which segkit's loader paints with
``data.ignore_index``. Image records also carry the file's ``sha256`` for the validation leak guard, and the
json's ``info`` says which teacher made it (checkpoints with their SHA-256, config hash, TTA and windows).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from segkit.data.masks import IGNORE_REGION
from segkit.data.rle import region_rle
from segkit.inference.confidence import ConfidenceHistogram, confidence_of, float16_doubt, pseudo_mask
from segkit.inference.predictor import Predictor
from segkit.inference.sources import ImageSource, InputImage
from segkit.paths import StagedFile

ConfidenceMap = tuple[InputImage, np.ndarray, np.ndarray]  # (image, uint8 labels, float16 doubt = 1 - confidence)


@dataclass(frozen=True)
class Rule:
    """Which pixels are kept: ``threshold`` for every class, or the ``class_balanced`` top fraction of each;
    then regions under ``min_area`` pixels are dropped."""

    threshold: float | None = None
    class_balanced: float | None = None
    min_area: int = 0

    def describe(self) -> str:
        how = (f"class-balanced p={self.class_balanced:g}" if self.class_balanced is not None
               else f"threshold {self.threshold:g}")
        return how + (f", min-area {self.min_area}" if self.min_area > 1 else "")


@dataclass
class PseudoLabelStats:
    """What was kept: ``thresholds`` per class, pixel counts per class (``predicted``, ``confident`` after the
    thresholds, ``kept`` after ``min_area``), the histograms, and the images left with nothing confident."""

    classes: list[str]
    histogram: ConfidenceHistogram
    thresholds: np.ndarray
    kept: np.ndarray
    images: int = 0
    empty: list[str] = field(default_factory=list)

    @property
    def predicted(self) -> np.ndarray:
        return self.histogram.predicted

    @property
    def confident(self) -> np.ndarray:
        return self.histogram.kept(self.thresholds)


def confidence_maps(predictor: Predictor, source: ImageSource, num_workers: int = 0) -> Iterator[ConfidenceMap]:
    """Every readable input's predicted classes and float16 doubt (1 - merged max probability), in order."""
    for info, pred in predictor.stream(source.decoded(num_workers)):
        labels = pred.labels.to("cpu", torch.uint8).numpy()
        yield info, labels, float16_doubt(pred.probs.max(dim=0).values.cpu().numpy())


class PseudoLabelWriter:
    """Streams image records and annotations to two part files, then joins them into the COCO json.

    Nothing appears at ``path`` before :meth:`commit` (temp file, checked as JSON, renamed); :meth:`abort`
    leaves ``path`` as it was.
    """

    def __init__(self, path: str | Path, categories: Sequence[dict], category_ids: Sequence[int],
                 ignore_index: int, parts_dir: Path, info: dict[str, Any], digests: dict[str, str]) -> None:
        self.path = Path(path)
        self.categories = list(categories)
        self.category_ids = list(category_ids)
        self.ignore_index = ignore_index
        self.info = info
        self.digests = digests
        self._images = open(parts_dir / "images.part", "w", encoding="utf-8")  # noqa: SIM115  (closed in commit/abort)
        self._annotations = open(parts_dir / "annotations.part", "w", encoding="utf-8")  # noqa: SIM115
        self.image_count = self.annotation_count = 0

    def add(self, image: InputImage, mask: np.ndarray, doubt: np.ndarray) -> None:
        record: dict[str, Any] = {"id": image.image_id, "file_name": image.name, "width": image.width,
                                  "height": image.height, "sha256": self.digests[image.name]}
        ignored = mask == self.ignore_index
        if ignored.any():
            record[IGNORE_REGION] = region_rle(ignored)
        self._images.write(("," if self.image_count else "") + "\n" + json.dumps(record))
        self.image_count += 1
        for k in np.unique(mask).tolist():
            if k in (0, self.ignore_index):
                continue
            region = mask == k
            rle = region_rle(region)
            ys, xs = np.nonzero(region)
            ann = {"id": self.annotation_count + 1, "image_id": image.image_id, "category_id": self.category_ids[k],
                   "segmentation": rle, "area": int(ys.size), "iscrowd": 0,
                   "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
                   "score": round(float(confidence_of(doubt[region]).mean()), 4)}
            self._annotations.write(("," if self.annotation_count else "") + "\n" + json.dumps(ann))
            self.annotation_count += 1

    def commit(self) -> Path:
        for part in (self._images, self._annotations):
            part.close()
        staged = StagedFile(self.path, "w")
        try:
            handle = staged.handle
            handle.write('{"info": ' + json.dumps(self.info) + ',\n"categories": ' + json.dumps(self.categories)
                         + ',\n"images": [')
            with open(self._images.name, encoding="utf-8") as part:
                shutil.copyfileobj(part, handle)
            handle.write('\n],\n"annotations": [')
            with open(self._annotations.name, encoding="utf-8") as part:
                shutil.copyfileobj(part, handle)
            handle.write("\n]}\n")
        except BaseException:
            staged.abort()
            raise
        return staged.commit(check=_is_json)

    def abort(self) -> None:
        for part in (self._images, self._annotations):
            part.close()


def _is_json(path: Path) -> None:
    with open(path, encoding="utf-8") as f:
        json.load(f)


def pseudo_label(maps: Iterable[ConfidenceMap], classes: Sequence[str], rule: Rule, ignore_index: int,
                 writer: PseudoLabelWriter, work_dir: Path, total: int | None = None,
                 progress: bool = True) -> PseudoLabelStats:
    """Threshold ``maps`` by ``rule`` into ``writer``; ``work_dir`` holds the stored maps of a two-pass run."""
    histogram = ConfidenceHistogram(len(classes))
    two_pass = rule.class_balanced is not None
    thresholds = None if two_pass else np.full(len(classes), float(rule.threshold))
    stats = PseudoLabelStats(list(classes), histogram, np.zeros(0), np.zeros(len(classes), np.int64))

    def finish(info: InputImage, labels: np.ndarray, doubt: np.ndarray) -> None:
        mask = pseudo_mask(labels, doubt, thresholds, ignore_index, rule.min_area)
        writer.add(info, mask, doubt)
        counts = np.bincount(mask.reshape(-1), minlength=256)
        stats.kept += counts[: len(classes)]
        stats.images += 1
        if counts[ignore_index] == mask.size:
            stats.empty.append(info.name)

    stored: list[InputImage] = []
    for info, labels, doubt in tqdm(maps, total=total, desc="predict", unit="img", disable=not progress,
                                    dynamic_ncols=True):
        histogram.add(labels, doubt)
        if two_pass:
            np.save(work_dir / f"{len(stored)}_labels.npy", labels)
            np.save(work_dir / f"{len(stored)}_doubt.npy", doubt)
            stored.append(info)
        else:
            finish(info, labels, doubt)
    if two_pass:
        thresholds = histogram.class_balanced(float(rule.class_balanced))
        for k, info in enumerate(tqdm(stored, desc="threshold", unit="img", disable=not progress,
                                      dynamic_ncols=True)):
            paths = work_dir / f"{k}_labels.npy", work_dir / f"{k}_doubt.npy"
            finish(info, np.load(paths[0]), np.load(paths[1]))
            for path in paths:
                path.unlink()
    stats.thresholds = thresholds
    return stats
