from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from segkit.cli.make_demo_data import main
from segkit.data import demo
from segkit.data.demo import DEMO_CATEGORIES, DEMO_COLORS, make_demo_dataset
from segkit.errors import SegkitError

SIZE = 64
SMALL = dict(num_train=6, num_val=6, num_test=2, size=SIZE, objects_per_image=(4, 6), seed=3, progress=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_demo_dataset(tmp_path_factory.mktemp("demo"), **SMALL)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return img[:, :, ::-1]


def decode(ann: dict, h: int, w: int) -> np.ndarray:
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], h, w))).astype(bool)


def test_same_seed_gives_identical_files_and_splits_are_independent(tmp_path, dataset):
    again = make_demo_dataset(tmp_path / "again", **SMALL)
    for split in demo.SPLITS:
        assert again[split].read_bytes() == dataset[split].read_bytes()
    first_root, second_root = dataset["train"].parent / "images", tmp_path / "again" / "images"
    for image in sorted(first_root.rglob("*.jpg")):
        assert (second_root / image.relative_to(first_root)).read_bytes() == image.read_bytes()

    other = make_demo_dataset(tmp_path / "other", **{**SMALL, "num_train": 2})
    assert other["val"].read_bytes() == dataset["val"].read_bytes()
    reseeded = make_demo_dataset(tmp_path / "reseeded", **{**SMALL, "seed": 4})
    assert reseeded["train"].read_bytes() != dataset["train"].read_bytes()


def test_json_is_valid_coco_matching_the_images(dataset):
    root = dataset["train"].parent
    for split, count in (("train", 6), ("val", 6), ("test", 2)):
        data = load(dataset[split])
        assert data["categories"] == DEMO_CATEGORIES
        assert [img["id"] for img in data["images"]] == list(range(count))
        for img in data["images"]:
            assert img["file_name"].startswith(f"{split}/")
            assert read_rgb(root / "images" / img["file_name"]).shape == (img["height"], img["width"], 3)
        if split == "test":
            assert "annotations" not in data
            continue
        anns = data["annotations"]
        assert [ann["id"] for ann in anns] == list(range(len(anns)))
        assert {ann["image_id"] for ann in anns} == set(range(count))
        assert {ann["category_id"] for ann in anns} == {c["id"] for c in DEMO_CATEGORIES}
        for ann in anns:
            assert ann["iscrowd"] == 0
            for poly in ann["segmentation"]:
                assert len(poly) % 2 == 0 and len(poly) >= 6
                assert min(poly) >= 0 and max(poly) <= SIZE
            x, y, w, h = ann["bbox"]
            assert 0 <= x and 0 <= y and x + w <= SIZE + 0.01 and y + h <= SIZE + 0.01
            assert ann["area"] == decode(ann, SIZE, SIZE).sum() > 0


def test_one_class_is_drawn_as_disjoint_parts(dataset):
    multi = [ann for ann in load(dataset["train"])["annotations"] if len(ann["segmentation"]) > 1]
    assert multi and {ann["category_id"] for ann in multi} == {5}
    for ann in multi:
        parts = [decode({"segmentation": [p]}, SIZE, SIZE) for p in ann["segmentation"]]
        assert sum(p.sum() for p in parts) == decode(ann, SIZE, SIZE).sum()


def nearest_class(colors: np.ndarray) -> np.ndarray:
    base = np.array([DEMO_COLORS[c["id"]] for c in DEMO_CATEGORIES], dtype=np.float64)
    return np.linalg.norm(colors[..., None, :] - base, axis=-1).argmin(axis=-1)


def test_painting_area_descending_reproduces_the_image(dataset):
    """The loader's COCO semantics (largest area first, smaller on top) must match what was drawn."""
    root = dataset["train"].parent
    data = load(dataset["train"])
    kernel = np.ones((3, 3), np.uint8)
    checked_objects, overlap_agree = 0, []
    for img in data["images"]:
        rgb = read_rgb(root / "images" / img["file_name"]).astype(np.float64)
        anns = sorted((a for a in data["annotations"] if a["image_id"] == img["id"]), key=lambda a: -a["area"])
        owner = np.full((SIZE, SIZE), -1)
        layers = np.zeros((SIZE, SIZE), dtype=int)
        for ann in anns:
            mask = decode(ann, SIZE, SIZE)
            owner[mask] = ann["category_id"]
            layers += mask
        for category in np.unique(owner[owner >= 0]):
            visible = cv2.erode((owner == category).astype(np.uint8), kernel) > 0  # away from JPEG edges
            if visible.sum() >= 6:
                assert nearest_class(rgb[visible].mean(axis=0)) == category
                checked_objects += 1
            hidden_below = visible & (layers >= 2)
            overlap_agree.extend(nearest_class(rgb[hidden_below]) == category)
    assert checked_objects >= 12
    assert len(overlap_agree) >= 20 and np.mean(overlap_agree) > 0.9


def test_interrupted_run_leaves_no_json(tmp_path, monkeypatch):
    make_demo_dataset(tmp_path, num_train=1, num_val=1, num_test=1, size=32, progress=False)
    written = []

    def imwrite_then_stop(path, img, params):
        written.append(path)
        if len(written) == 2:
            raise KeyboardInterrupt
        return cv2.imwrite(path, img, params)

    monkeypatch.setattr(demo.cv2, "imwrite", imwrite_then_stop)
    with pytest.raises(KeyboardInterrupt):
        make_demo_dataset(tmp_path, num_train=3, num_val=1, num_test=1, size=32, progress=False)
    assert not list(tmp_path.glob("*.json*"))


@pytest.mark.parametrize(
    "bad",
    [
        ["--size", "16"],
        ["--objects", "3", "1"],
        ["--objects", "0", "2"],
        ["--num-train", "0"],
        ["--seed", "-1"],
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, capsys, bad):
    assert main(["--out", str(tmp_path), "--no-progress", *bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("segkit: error: demo ") and err.count("\n") == 1
    assert not list(tmp_path.rglob("*.json"))


def test_cli_reports_what_it_wrote(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--num-train", "2", "--num-val", "1", "--num-test", "1", "--size", "32"]
    assert main([*args, "--objects", "2", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "train: 2 images, 4 annotations" in out and "test: 1 images, no annotations" in out
    assert main(args) == 0
    assert "demo data" in capsys.readouterr().err  # the progress bar
    with pytest.raises(SegkitError):
        main([*args, "--size", "8", "--debug"])
