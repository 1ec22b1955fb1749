"""Several COCO sources as one training set: the labelled json plus pseudo-labels, each with a sampling weight.

``data.train.sources`` lists them (``ann``, ``img_dir``, ``weight``); positions run through source 0's images,
then source 1's, and so on. The sources share one augmentation pipeline (``data.train.pipeline``) and must
yield one class list, so a mask means the same thing whichever json it came from. Which images an epoch draws
is :class:`~segkit.data.sampling.WeightedSources` (``epoch_plan``), read by the training sampler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from segkit.config_schema import SOURCE_DEFAULTS
from segkit.data.coco import CocoSegDataset
from segkit.data.sampling import WeightedSources
from segkit.errors import SegkitError


@dataclass(frozen=True)
class SourceSpec:
    """One training json: ``ann`` and ``img_dir`` under ``data.root`` (or absolute), its sampling weight, and the
    config key that names it in errors (``data.train.ann`` or ``data.train.sources[k]``)."""

    ann: str
    img_dir: str
    weight: float
    key: str
    img_dir_key: str


def source_specs(data: Any, source: str = "the config") -> list[SourceSpec]:
    """The training sources of the ``data`` config section: ``data.train.sources``, or ``data.train.ann`` alone."""
    sources, ann = data.train.get("sources"), data.train.get("ann")
    if not sources:
        if not ann:
            raise SegkitError(f"{source}: data.train.ann is None and data.train.sources is not set; give the "
                              "training json in one of them")
        return [SourceSpec(ann, data.img_dir, 1.0, "data.train.ann", "data.img_dir")]
    if ann is not None:
        raise SegkitError(f"{source}: data.train.sources lists the training jsons, so data.train.ann must be None "
                          f"(it is {ann!r}); set data.train.ann=None and put dict(ann={ann!r}) into the sources")
    specs = []
    for k, item in enumerate(sources):
        entry = {**SOURCE_DEFAULTS, **item}
        key = f"data.train.sources[{k}]"
        own_dir = entry["img_dir"] is not None
        specs.append(SourceSpec(entry["ann"], entry["img_dir"] if own_dir else data.img_dir, float(entry["weight"]),
                                key, f"{key}.img_dir" if own_dir else "data.img_dir"))
    return specs


class SourceSet(Dataset):
    """The images of several :class:`CocoSegDataset` parts as one dataset with weighted epochs.

    Offers what training, copy-paste, ``tools/browse_dataset.py`` and ``tools/test.py --split train`` use:
    ``classes``, ``pipeline``, ``load_raw``/``to_sample``, ``mask``, ``annotations``, ``annotation_classes``
    and the sampler's ``epoch_plan``. ``parts[k]`` and ``keys[k]`` are each source and its config key.
    """

    def __init__(self, parts: Sequence[CocoSegDataset], weights: Sequence[float], keys: Sequence[str],
                 pipeline: Callable | None = None) -> None:
        if not parts or not len(parts) == len(weights) == len(keys):
            raise ValueError("one weight and one key per part")
        first = parts[0]
        for part, key in zip(parts, keys):
            if len(part) == 0:
                raise SegkitError(f"{key}: {part.ann_file} has no usable image; remove the source or fix the json")
            if part.classes != first.classes:
                raise SegkitError(f"{key}: {part.ann_file} yields the classes {part.classes[1:]}, but {keys[0]} "
                                  f"({first.ann_file}) yields {first.classes[1:]}; every training source needs the "
                                  "same class list (same categories, or data.classes mapping them alike)")
        self.parts = list(parts)
        self.keys = list(keys)
        self.pipeline = pipeline
        for part in self.parts:  # one pipeline object: SeededSamples seeds it, whichever part builds the sample
            part.pipeline = pipeline
        self.classes = first.classes
        self.num_classes = first.num_classes
        self.ignore_index = first.ignore_index
        self.test_mode = False
        self._ends = np.cumsum([len(part) for part in self.parts])
        self.epoch_plan = WeightedSources(tuple(len(part) for part in self.parts), tuple(float(w) for w in weights))

    @property
    def ann_file(self) -> str:
        """The sources' jsons, for messages."""
        return " + ".join(str(part.ann_file) for part in self.parts)

    def __len__(self) -> int:
        return int(self._ends[-1])

    def locate(self, i: int) -> tuple[int, int]:
        """``(part, position in that part)`` of dataset position ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(f"image {i} out of range for {len(self)} images")
        k = int(np.searchsorted(self._ends, i, side="right"))
        return k, i - (int(self._ends[k - 1]) if k else 0)

    def __getitem__(self, i: int) -> dict[str, Any]:
        k, j = self.locate(i)
        return self.parts[k][j]

    def load_raw(self, i: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        k, j = self.locate(i)
        return self.parts[k].load_raw(j)

    def to_sample(self, image: np.ndarray, mask: np.ndarray, info: dict[str, Any]) -> dict[str, Any]:
        return self.parts[0].to_sample(image, mask, info)  # the parts share the pipeline: any part does the same

    def mask(self, i: int) -> np.ndarray:
        k, j = self.locate(i)
        return self.parts[k].mask(j)

    def annotations(self, i: int) -> list[dict[str, Any]]:
        k, j = self.locate(i)
        return self.parts[k].annotations(j)

    def annotation_classes(self, i: int) -> list[int]:
        k, j = self.locate(i)
        return self.parts[k].annotation_classes(j)
