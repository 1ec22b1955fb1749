from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from segkit.config import load_config
from segkit.data.coco import CocoSegDataset
from segkit.data.loader import build_dataset
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


def dataset(root: Path, **kwargs) -> CocoSegDataset:
    """A dataset whose mask cache lives in the test's folder, not in the user's home."""
    return CocoSegDataset(root, **{"cache_dir": root / "cache", **kwargs})


def test_samples_are_uint8_chw_rgb_with_rank_class_masks(tmp_path):
    make_dataset(tmp_path)
    ds = dataset(tmp_path)
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
    ds = dataset(tmp_path, ann=str(tmp_path / "test.json"), test_mode=True, where="data.test")
    samples = [ds[i] for i in range(len(ds))]
    assert [s["image_id"] for s in samples] == [0, 1, 2]
    assert all("mask" not in s and s["image"].dtype == torch.uint8 for s in samples)


def test_flip_pipeline_moves_image_and_mask_together(tmp_path):
    make_dataset(tmp_path)
    plain = dataset(tmp_path)[0]
    flipped = dataset(tmp_path, pipeline=[dict(type="HorizontalFlip", p=1.0)])[0]
    np.testing.assert_array_equal(flipped["image"].numpy(), np.flip(plain["image"].numpy(), axis=2))
    np.testing.assert_array_equal(flipped["mask"].numpy(), np.flip(plain["mask"].numpy(), axis=1))
    assert flipped["image"].is_contiguous() and flipped["height"] == H


def test_bad_pipeline_is_reported_at_construction_with_its_key(tmp_path):
    make_dataset(tmp_path)
    with pytest.raises(SegkitError, match=r"data.val.pipeline\[0\]: remove Normalize"):
        dataset(tmp_path, pipeline=[dict(type="Normalize")], where="data.val")


def test_missing_root_names_path_and_key(tmp_path):
    with pytest.raises(SegkitError, match=r"data.root: dataset folder .*nowhere does not exist.*make demo"):
        dataset(tmp_path / "nowhere")


def test_missing_annotation_file_names_path_and_key(tmp_path):
    make_dataset(tmp_path)
    with pytest.raises(SegkitError, match=r"data.val.ann: annotation file .*val.json not found.*data.root"):
        dataset(tmp_path, ann="val.json", where="data.val")


def test_invalid_json_names_file_and_line(tmp_path):
    make_dataset(tmp_path, break_json=True)
    lines = (tmp_path / "train.json").read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "categories" in text)
    with pytest.raises(SegkitError, match=rf"train.json:{line}:\d+: invalid JSON"):
        dataset(tmp_path)


@pytest.mark.parametrize("key", ["images", "categories", "annotations"])
def test_missing_top_level_key(tmp_path, key):
    coco = make_dataset(tmp_path)
    del coco[key]
    (tmp_path / "train.json").write_text(json.dumps(coco))
    with pytest.raises(SegkitError, match=rf"train.json: missing or non-list '{key}'"):
        dataset(tmp_path)


def test_missing_images_are_counted_and_the_first_named(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / "images" / "a.png").unlink()
    (tmp_path / "images" / "sub" / "c.jpg").unlink()
    with pytest.raises(SegkitError, match=r"train.json: 2 of 3 listed images are missing .*first: .*a.png"):
        dataset(tmp_path)


def test_load_raw_then_to_sample_is_getitem(tmp_path):
    make_dataset(tmp_path)
    ds = dataset(tmp_path, pipeline=[dict(type="HorizontalFlip", p=1.0)])
    image, mask, info = ds.load_raw(0)
    assert image.dtype == np.uint8 and image.shape == (H, W, 3) and image[0, 3].tolist() == [90, 50, 200]
    assert mask.dtype == np.uint8 and mask.shape == (H, W) and mask[1, 1] == 2  # not yet flipped
    assert info == ds.images[0]  # records are stored serialized: each access unpickles an equal dict
    rebuilt, direct = ds.to_sample(image, mask, info), ds[0]
    assert rebuilt.keys() == direct.keys()
    assert all(torch.equal(rebuilt[k], direct[k]) if torch.is_tensor(direct[k]) else rebuilt[k] == direct[k]
               for k in direct)
    assert rebuilt["mask"][1, W - 2] == 2  # the pipeline ran


def test_test_mode_load_raw_gives_an_empty_mask_and_uses_no_cache(tmp_path):
    coco = make_dataset(tmp_path)
    del coco["annotations"]
    (tmp_path / "test.json").write_text(json.dumps(coco))
    ds = dataset(tmp_path, ann="test.json", test_mode=True, where="data.test")
    _, mask, _ = ds.load_raw(2)
    assert mask.shape == (W, H) and not mask.any() and ds.cache is None


def test_class_mapping_reaches_the_masks(tmp_path):
    make_dataset(tmp_path)
    ds = dataset(tmp_path, classes={"can": 1, "paper": 0})
    assert ds.classes == ["Background", "can"] and ds.num_classes == 2
    expected = np.zeros((H, W), np.uint8)
    expected[1:3, 1:3] = 1  # paper dropped, the can still there
    np.testing.assert_array_equal(ds[0]["mask"].numpy(), expected)
    with pytest.raises(SegkitError, match=r"train.json: data.classes\[0\]: no category is named 'cans'.*'can'"):
        dataset(tmp_path, classes=["cans"])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("overlap", "biggest", "data.overlap must be one of 'area_desc', 'max_class', 'poly_len_asc', 'annot"),
        ("crowd", "drop", "data.crowd must be one of 'paint', 'ignore', got 'drop'"),
        ("on_bad_annotation", "warn", "data.on_bad_annotation must be one of 'error', 'skip'"),
        ("cache", "yes", "data.cache must be True or False, got 'yes'"),
        ("cache_dir", 3, "data.cache_dir must be a folder path or None, got 3"),
    ],
)
def test_bad_data_settings_name_their_key(tmp_path, key, value, message):
    make_dataset(tmp_path)
    with pytest.raises(SegkitError, match=message):
        dataset(tmp_path, **{key: value})


def test_build_dataset_passes_the_data_keys(tmp_path):
    make_dataset(tmp_path)
    config = tmp_path / "config.py"
    config.write_text(f"data = dict(root={str(tmp_path)!r}, classes=['can'], overlap='annotation_order', "
                      f"crowd='ignore', on_bad_annotation='skip', cache_dir={str(tmp_path / 'masks')!r})\n")
    ds = build_dataset(load_config(config), "train")
    assert ds.classes == ["Background", "can"] and (ds.overlap, ds.crowd) == ("annotation_order", "ignore")
    assert ds.cache is not None and ds.cache.root == tmp_path / "masks"
    ds.mask(0)
    assert len(list((tmp_path / "masks").rglob("*.skm"))) == 1
    config.write_text(f"data = dict(root={str(tmp_path)!r}, cache=False)\n")
    assert build_dataset(load_config(config), "train").cache is None


def test_image_size_is_checked_as_opencv_decodes_it_with_exif_rotation(tmp_path):
    """A photo stored 8x6 with EXIF orientation 6 (rotate 90) decodes to 6x8: the json must say so."""
    make_dataset(tmp_path)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (8, 6), (200, 10, 10)).save(tmp_path / "images" / "rot.jpg", exif=exif.tobytes())
    images = [{"id": 7, "file_name": "rot.jpg", "height": 8, "width": 6}]
    make_dataset(tmp_path / "ok", images=images, annotations=[])
    (tmp_path / "ok" / "images" / "rot.jpg").write_bytes((tmp_path / "images" / "rot.jpg").read_bytes())
    assert dataset(tmp_path / "ok")[0]["image"].shape == (3, 8, 6)
    images[0].update(height=6, width=8)  # the stored size, not the decoded one
    make_dataset(tmp_path / "bad", images=images, annotations=[])
    (tmp_path / "bad" / "images" / "rot.jpg").write_bytes((tmp_path / "images" / "rot.jpg").read_bytes())
    with pytest.raises(SegkitError, match=r"image id=7: .*rot.jpg is 6x8 \(WxH\) but the json says 8x6"):
        dataset(tmp_path / "bad")


def test_image_changed_after_construction_is_named_when_loaded(tmp_path):
    make_dataset(tmp_path)
    ds = dataset(tmp_path)
    cv2.imwrite(str(tmp_path / "images" / "b.png"), np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(SegkitError, match=rf"b.png is {W}x{H + 2} \(WxH\) but .*train.json says {W}x{H}"):
        ds[1]
    (tmp_path / "images" / "b.png").write_bytes(b"not a png")
    with pytest.raises(SegkitError, match=r"cannot read image .*b.png \(listed in .*train.json\)"):
        ds[1]


def ignore_rle(region: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(region.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}


def test_an_images_ignore_rle_is_painted_with_the_ignore_index_over_its_annotations(tmp_path):
    from pycocotools.coco import COCO

    from segkit.data.mask_cache import mask_key

    region = np.zeros((H, W), bool)
    region[0:2, 2:8] = True  # over the paper and the can of image 0
    images = make_dataset(tmp_path)["images"]
    images[0]["ignore_rle"] = ignore_rle(region)
    images[1]["ignore_rle"] = {"size": [H, W], "counts": [0, H * W]}  # uncompressed: every pixel
    make_dataset(tmp_path / "with", images=images)
    plain, ignored = dataset(tmp_path), dataset(tmp_path / "with", ignore_index=254)
    expected = plain.mask(0).copy()
    expected[region] = 254
    assert np.array_equal(ignored.mask(0), expected) and (ignored.mask(1) == 254).all()
    assert np.array_equal(ignored.mask(0), ignored.mask(0))  # the second read comes from the mask cache
    anns = plain.annotations(0)
    keys = {mask_key(anns, H, W, plain.cat_to_index, "area_desc", "paint", 255, r) for r in
            (None, images[0]["ignore_rle"], ignore_rle(~region))}
    assert len(keys) == 3  # the region is part of the key; without one the key is the old one
    assert mask_key(anns, H, W, plain.cat_to_index, "area_desc", "paint", 255) in keys
    assert len(COCO(str(tmp_path / "with" / "train.json")).imgs) == 3  # pycocotools reads the file unchanged


@pytest.mark.parametrize(("bad", "reason"), [
    ([[0, 0, 4, 0, 4, 4]], "expected an RLE dict"),
    ({"size": [W, H], "counts": [0, H * W]}, "does not match the image size"),
    ({"size": [H, W], "counts": [0, 5]}, "RLE runs cover 5 pixels"),
])
def test_a_malformed_ignore_rle_stops_or_drops_its_image(tmp_path, bad, reason):
    images = make_dataset(tmp_path)["images"]
    images[0]["ignore_rle"] = bad
    make_dataset(tmp_path / "bad", images=images)
    with pytest.raises(SegkitError, match=rf"image id=0: 'a.png' has a malformed ignore_rle: .*{reason}"):
        dataset(tmp_path / "bad")
    skipped = dataset(tmp_path / "bad", on_bad_annotation="skip")
    assert [info["id"] for info in skipped.images] == [1, 2] and skipped.skipped[0]["image_id"] == 0


def test_a_truncated_jpeg_is_a_bad_image_not_grey_training_data(tmp_path):
    make_dataset(tmp_path)
    ds = dataset(tmp_path)
    jpeg = tmp_path / "images" / "sub" / "c.jpg"
    data = cv2.imencode(".jpg", cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (W, H, 3), np.uint8),
                                                 (3, 3), 1))[1].tobytes()
    jpeg.write_bytes(data[:-40])
    assert cv2.imread(str(jpeg)) is not None  # OpenCV alone returns it, grey where the data stops
    with pytest.raises(SegkitError, match=r"cannot read image .*c.jpg \(listed in .*train.json\): a truncated JPEG"):
        ds[2]
