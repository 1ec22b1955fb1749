from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segkit.config import load_config
from segkit.data.copy_paste import CopyPaste, _crop_object, wrap_copy_paste
from segkit.data.demo import make_demo_dataset
from segkit.data.loader import build_dataset
from segkit.errors import SegkitError

ROOT = Path(__file__).resolve().parents[2]


class Squares:
    """Image ``i`` is grey ``10 * i`` with one object square of colour ``100 + i``; class "b" (id 20) in
    images 1 and 2 (image 2 is larger), class "a" (id 10) in image 0; image 3 has no objects."""

    classes = ["Background", "a", "b"]
    cat_to_index = {10: 1, 20: 2}

    def __init__(self) -> None:
        self.images = [{"id": i, "height": h, "width": w} for i, (h, w) in
                       enumerate([(20, 30), (20, 30), (60, 80), (20, 30)])]
        self.anns_by_image = {0: [{"category_id": 10, "bbox": [2, 2, 5, 5]}],
                              1: [{"category_id": 20, "bbox": [10, 5, 8, 6]}],
                              2: [{"category_id": 20, "bbox": [40, 30, 30, 24]}]}
        self.raw_loads = 0
        self.pipeline = "the pipeline"

    def __len__(self) -> int:
        return len(self.images)

    def annotations(self, i: int) -> list[dict]:
        return self.anns_by_image.get(self.images[i]["id"], [])

    def annotation_classes(self, i: int) -> list[int]:
        return [self.cat_to_index[ann["category_id"]] for ann in self.annotations(i)]

    def load_raw(self, i: int):
        self.raw_loads += 1
        info = self.images[i]
        image = np.full((info["height"], info["width"], 3), 10 * i, np.uint8)
        mask = np.zeros((info["height"], info["width"]), np.uint8)
        for ann in self.anns_by_image.get(i, []):
            x, y, w, h = ann["bbox"]
            image[y : y + h, x : x + w] = 100 + i
            mask[y : y + h, x : x + w] = self.cat_to_index[ann["category_id"]]
        return image, mask, info

    def to_sample(self, image, mask, info):
        return {"image": image, "mask": mask, "id": info["id"]}


def test_pasted_pixels_come_with_their_labels_from_another_image():
    base = Squares()
    ds = CopyPaste(base, ["b"], p=1.0, max_objects=3)
    assert base.raw_loads == 0  # the donor index comes from the annotations alone
    assert ds.classes == base.classes and ds.pipeline == "the pipeline" and len(ds) == 4
    pasted_any = False
    for seed in range(6):
        torch.manual_seed(seed)
        for i in (0, 3):
            original_image, original_mask, _ = base.load_raw(i)
            sample = ds[i]
            changed = sample["mask"] != original_mask
            assert (sample["mask"][changed] == 2).all()
            # pasted pixels carry the object colour of donor 1 or 2, never the background or image i's own
            assert set(np.unique(sample["image"][changed])) <= {101, 102}
            # images 0 and 3 hold no "b": image pixels change exactly where labels change
            assert np.array_equal((sample["image"] != original_image).any(-1), changed)
            pasted_any |= bool(changed.any())
            assert sample["mask"].shape == original_mask.shape
    assert pasted_any


def test_an_image_never_receives_its_own_object_and_big_objects_are_shrunk():
    ds = CopyPaste(Squares(), ["b"], p=1.0, max_objects=1)
    torch.manual_seed(0)
    sample = ds[1]  # only donor left is image 2, whose object (30x24 of 80x60) scales to about 11x8 here
    changed = sample["mask"] != Squares().load_raw(1)[1]
    assert set(np.unique(sample["image"][changed])) <= {102}
    rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
    if rows.size:
        assert rows[-1] - rows[0] < 20 and cols[-1] - cols[0] < 30


def test_same_seed_same_sample_and_p0_changes_nothing():
    ds = CopyPaste(Squares(), ["a", "b"], p=0.5, max_objects=3)
    results = []
    for seed in (1, 1, 2, 3, 4, 5):
        torch.manual_seed(seed)
        results.append([ds[i]["mask"] for i in range(4)])
    assert all(np.array_equal(a, b) for a, b in zip(results[0], results[1]))
    assert any(not np.array_equal(a, b) for r in results[2:] for a, b in zip(results[0], r))
    off = CopyPaste(Squares(), ["b"], p=0.0)
    assert all(np.array_equal(off[i]["mask"], Squares().load_raw(i)[1]) for i in range(4))


def test_config_checks(caplog):
    base = Squares()
    assert wrap_copy_paste(base, None) is base
    assert isinstance(wrap_copy_paste(base, {"classes": ["b"], "p": 0.3, "max_objects": 2}), CopyPaste)
    with pytest.raises(SegkitError, match=r"data.train.copy_paste.classes: 'B' is not a class; did you mean 'b'"):
        wrap_copy_paste(base, {"classes": ["B"]})
    with pytest.raises(SegkitError, match="Background cannot be pasted"):
        wrap_copy_paste(base, {"classes": ["Background"]})
    with pytest.raises(SegkitError, match=r"unknown key 'max_object'.*'max_objects'"):
        wrap_copy_paste(base, {"classes": ["b"], "max_object": 2})
    with pytest.raises(SegkitError, match=r"copy_paste.p must be a probability"):
        wrap_copy_paste(base, {"classes": ["b"], "p": 2})
    with pytest.raises(SegkitError, match=r"max_objects must be a positive int"):
        wrap_copy_paste(base, {"classes": ["b"], "max_objects": 0})
    with pytest.raises(SegkitError, match=r"classes must be a non-empty list"):
        wrap_copy_paste(base, {"classes": "b"})
    base.anns_by_image = {1: base.anns_by_image[1]}
    with caplog.at_level("WARNING", logger="segkit.data"):
        wrap_copy_paste(base, {"classes": ["a", "b"]})
    assert "copy_paste.classes: 'a' has no object" in caplog.text
    base.anns_by_image = {}
    with pytest.raises(SegkitError, match=r"none of \['b'\] has an object"):
        wrap_copy_paste(base, {"classes": ["b"]})


def test_build_dataset_wraps_the_training_split_only(tmp_path):
    make_demo_dataset(tmp_path, num_train=4, num_val=2, num_test=1, size=48, objects_per_image=(2, 3), seed=1,
                      progress=False)
    overrides = [f"data.root={tmp_path}", "data.cache=False",
                 "data.train.copy_paste={'classes': ['Glass', 'Metal'], 'p': 1.0}"]
    cfg = load_config(ROOT / "configs" / "demo_unet.py", overrides)
    train = build_dataset(cfg, "train")
    assert isinstance(train, CopyPaste) and train.classes[0] == "Background"
    assert not isinstance(build_dataset(cfg, "val"), CopyPaste)
    torch.manual_seed(0)
    sample = train[0]
    assert sample["image"].dtype == torch.uint8 and sample["mask"].shape == (128, 128)


def test_only_the_chosen_objects_pixels_are_cut_out():
    mask = np.zeros((30, 30), np.uint8)
    triangle = [0, 0, 0, 20, 20, 20]  # lower-left half of the box [0, 0, 20, 20]
    cv2.fillPoly(mask, [np.array(triangle).reshape(-1, 2)], 2)
    mask[1:5, 15:19] = 2  # another object of the class inside the box, outside the outline
    mask[10:14, 2:6] = 1  # an object of another class on top of the triangle
    image = np.dstack([mask * 50] * 3).astype(np.uint8)
    patch, keep = _crop_object(image, mask, 2, {"bbox": [0, 0, 20, 20], "segmentation": [triangle]})
    assert keep.shape == patch.shape[:2] and (patch[keep] == 100).all()
    assert keep[:5, 15:].sum() == 0 and not keep[10:14, 2:6].any()
    assert keep.sum() == (mask[:20, :20] == 2).sum() - 16  # the box ends before x, y = 20
