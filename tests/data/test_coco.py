from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segkit.data.coco import CocoSegDataset
from segkit.errors import SegkitError

H, W = 6, 8


def make_dataset(root: Path, *, break_json: bool = False, **overrides) -> dict:
    """Three images (ids 0..2, one JPEG in a sub-folder), categories 0 and 4, two overlapping objects."""
    (root / "images" / "sub").mkdir(parents=True)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = np.arange(W) * 30  # red ramp left to right
    rgb[..., 1] = 50
    rgb[..., 2] = 200
    cv2.imwrite(str(root / "images" / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "images" / "b.png"), np.full((H, W, 3), 9, np.uint8))
    cv2.imwrite(str(root / "images" / "sub" / "c.jpg"), np.full((W, H, 3), 128, np.uint8))
    coco = {
        "images": [
            {"id": 0, "file_name": "a.png", "height": H, "width": W},
            {"id": 1, "file_name": "b.png", "height": H, "width": W},
            {"id": 2, "file_name": "sub/c.jpg", "height": W, "width": H},
        ],
        "categories": [{"id": 4, "name": "can"}, {"id": 0, "name": "paper"}],
        "annotations": [
            # A big paper region (category id 0) with a small can on it, listed big-last.
            {"id": 0, "image_id": 0, "category_id": 4, "segmentation": [[1, 1, 3, 1, 3, 3, 1, 3]]},
            {"id": 1, "image_id": 0, "category_id": 0, "segmentation": [[0, 0, 6, 0, 6, 4, 0, 4]]},
            # The tall JPEG (H and W swapped) as uncompressed RLE: its first 12 pixels, column-major.
            {"id": 2, "image_id": 2, "category_id": 4,
             "segmentation": {"counts": [0, 12, 36], "size": [W, H]}},
        ],
    }
    coco.update(overrides)
    text = json.dumps(coco, indent=1)
    if break_json:
        text = text.replace('"categories":', '"categories"', 1)
    (root / "train.json").write_text(text)
    return coco


def test_samples_are_uint8_chw_rgb_with_rank_class_masks(tmp_path):
    make_dataset(tmp_path)
    ds = CocoSegDataset(tmp_path)
    assert len(ds) == 3 and ds.classes == ["Background", "paper", "can"] and ds.num_classes == 3
    sample = ds[0]
    image, mask = sample["image"], sample["mask"]
    assert image.dtype == torch.uint8 and image.shape == (3, H, W) and image.is_contiguous()
    assert mask.dtype == torch.uint8 and mask.shape == (H, W) and mask.is_contiguous()
    assert image[:, 0, 3].tolist() == [90, 50, 200]  # RGB order, not BGR
    expected = np.zeros((H, W), np.uint8)
    expected[0:4, 0:6] = 1  # paper, category id 0 -> class 1
    expected[1:3, 1:3] = 2  # can on top, whatever the annotation order
    np.testing.assert_array_equal(mask.numpy(), expected)
    assert {k: sample[k] for k in ("image_id", "file_name", "height", "width")} == {
        "image_id": 0,
        "file_name": "a.png",
        "height": H,
        "width": W,
    }
    assert not ds[1]["mask"].any()  # no annotations: all background
    tall = ds[2]
    assert tall["image"].shape == (3, W, H) and tall["mask"][:, 0].tolist() == [2] * W
    assert tall["mask"][:, 1:].sum() == 2 * 4  # the RLE's 12 pixels: column 0 and half of column 1


def test_test_mode_needs_no_annotations_and_yields_every_image_without_mask(tmp_path):
    coco = make_dataset(tmp_path)
    del coco["annotations"]
    (tmp_path / "test.json").write_text(json.dumps(coco))
    ds = CocoSegDataset(tmp_path, ann=str(tmp_path / "test.json"), test_mode=True, where="data.test")
    samples = [ds[i] for i in range(len(ds))]
    assert [s["image_id"] for s in samples] == [0, 1, 2]
    assert all("mask" not in s and s["image"].dtype == torch.uint8 for s in samples)


def test_flip_pipeline_moves_image_and_mask_together(tmp_path):
    make_dataset(tmp_path)
    plain = CocoSegDataset(tmp_path)[0]
    flipped = CocoSegDataset(tmp_path, pipeline=[dict(type="HorizontalFlip", p=1.0)])[0]
    np.testing.assert_array_equal(flipped["image"].numpy(), np.flip(plain["image"].numpy(), axis=2))
    np.testing.assert_array_equal(flipped["mask"].numpy(), np.flip(plain["mask"].numpy(), axis=1))
    assert flipped["image"].is_contiguous() and flipped["height"] == H


def test_bad_pipeline_is_reported_at_construction_with_its_key(tmp_path):
    make_dataset(tmp_path)
    with pytest.raises(SegkitError, match=r"data.val.pipeline\[0\]: remove Normalize"):
        CocoSegDataset(tmp_path, pipeline=[dict(type="Normalize")], where="data.val")


def test_missing_root_names_path_and_key(tmp_path):
    with pytest.raises(SegkitError, match=r"data.root: dataset folder .*nowhere does not exist.*make demo"):
        CocoSegDataset(tmp_path / "nowhere")


def test_missing_annotation_file_names_path_and_key(tmp_path):
    make_dataset(tmp_path)
    with pytest.raises(SegkitError, match=r"data.val.ann: annotation file .*val.json not found.*data.root"):
        CocoSegDataset(tmp_path, ann="val.json", where="data.val")


def test_invalid_json_names_file_and_line(tmp_path):
    make_dataset(tmp_path, break_json=True)
    lines = (tmp_path / "train.json").read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "categories" in text)
    with pytest.raises(SegkitError, match=rf"train.json:{line}:\d+: invalid JSON"):
        CocoSegDataset(tmp_path)


@pytest.mark.parametrize("key", ["images", "categories", "annotations"])
def test_missing_top_level_key(tmp_path, key):
    coco = make_dataset(tmp_path)
    del coco[key]
    (tmp_path / "train.json").write_text(json.dumps(coco))
    with pytest.raises(SegkitError, match=rf"train.json: missing or non-list '{key}'"):
        CocoSegDataset(tmp_path)


def test_missing_images_are_counted_and_the_first_named(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / "images" / "a.png").unlink()
    (tmp_path / "images" / "sub" / "c.jpg").unlink()
    with pytest.raises(SegkitError, match=r"train.json: 2 of 3 listed images are missing .*first: .*a.png"):
        CocoSegDataset(tmp_path)


def test_unknown_category_is_caught_at_construction(tmp_path):
    coco = make_dataset(tmp_path)
    coco["annotations"][1]["category_id"] = 7
    (tmp_path / "train.json").write_text(json.dumps(coco))
    with pytest.raises(SegkitError, match=r"train.json: annotation id=1 has category_id=7.*ids: \[0, 4\]"):
        CocoSegDataset(tmp_path)


def test_annotation_for_unknown_image_is_an_error(tmp_path):
    coco = make_dataset(tmp_path)
    coco["annotations"][0]["image_id"] = 99
    (tmp_path / "train.json").write_text(json.dumps(coco))
    with pytest.raises(SegkitError, match=r"train.json: annotation id=0 refers to image_id=99"):
        CocoSegDataset(tmp_path)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ([{"id": 0, "file_name": "a.png", "height": H}], r"images\[0\] needs"),
        ([{"id": 0, "file_name": "a.png", "height": H, "width": W}] * 2, "image id 0 appears twice"),
    ],
)
def test_bad_image_records(tmp_path, images, message):
    make_dataset(tmp_path, images=images, annotations=[])
    with pytest.raises(SegkitError, match=message):
        CocoSegDataset(tmp_path)


def test_unreadable_image_is_named_when_loaded(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / "images" / "b.png").write_bytes(b"not a png")
    ds = CocoSegDataset(tmp_path)
    with pytest.raises(SegkitError, match=r"cannot read image .*b.png \(listed in .*train.json\)"):
        ds[1]


def test_image_size_must_match_the_json(tmp_path):
    images = [{"id": 5, "file_name": "a.png", "height": H + 1, "width": W}]
    make_dataset(tmp_path, images=images, annotations=[])
    with pytest.raises(SegkitError, match=rf"a.png is {W}x{H} \(WxH\) but .*train.json says {W}x{H + 1}"):
        CocoSegDataset(tmp_path)[0]


def test_malformed_segmentation_names_the_json(tmp_path):
    coco = make_dataset(tmp_path)
    coco["annotations"][0]["segmentation"] = [[1, 1, 2]]
    (tmp_path / "train.json").write_text(json.dumps(coco))
    with pytest.raises(SegkitError, match=r"train.json: annotation id=0 has a malformed segmentation"):
        CocoSegDataset(tmp_path)[0]
