"""Every kind of bad record, in both data.on_bad_annotation modes."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from segkit.data.coco import CocoSegDataset
from segkit.errors import SegkitError

H, W = 6, 8
SQUARE = [[1, 1, 3, 1, 3, 3, 1, 3]]


def write_set(root: Path, change) -> None:
    """Two 6x8 images with one good annotation each, then ``change(coco, root)`` adds the bad record."""
    (root / "images").mkdir(parents=True)
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(root / "images" / name), np.full((H, W, 3), 100, np.uint8))
    coco = {
        "images": [{"id": 0, "file_name": "a.png", "height": H, "width": W},
                   {"id": 1, "file_name": "b.png", "height": H, "width": W}],
        "categories": [{"id": 1, "name": "can"}, {"id": 2, "name": "paper"}],
        "annotations": [{"id": 10, "image_id": 0, "category_id": 1, "segmentation": SQUARE},
                        {"id": 11, "image_id": 1, "category_id": 2, "segmentation": SQUARE}],
    }
    change(coco, root)
    (root / "train.json").write_text(json.dumps(coco))


def bad_ann(**fields):
    def change(coco, root):
        coco["annotations"].append({"id": 20, "image_id": 0, "category_id": 1, "segmentation": SQUARE, **fields})
    return change


def set_image(pos, **fields):
    def change(coco, root):
        coco["images"][pos].update(fields)
    return change


def add(key, record):
    def change(coco, root):
        coco[key].append(record)
    return change


def corrupt_b(coco, root):
    (root / "images" / "b.png").write_bytes(b"not a png")


# kind: (change, image id, annotation id, reason)
CASES = {
    "fewer than 3 points": (bad_ann(segmentation=[[0, 0, 2, 0]]), 0, 20, "polygon part 0 has 2 points"),
    "odd coordinate count": (bad_ann(segmentation=[[0, 0, 2, 0, 2]]), 0, 20, "odd count of 5 numbers"),
    "non-finite number": (bad_ann(segmentation=[[0, 0, 2, 0, float("nan"), 2]]), 0, 20, "finite numbers"),
    "RLE of another size": (bad_ann(segmentation={"counts": [48], "size": [W, H]}), 0, 20,
                            r"RLE size \[8, 6\] does not match the image size \[6, 8\]"),
    "RLE runs not covering the image": (bad_ann(segmentation={"counts": "1", "size": [H, W]}), 0, 20,
                                        "RLE runs cover 1 pixels, not 6x8=48"),
    "unknown image": (bad_ann(image_id=99), 99, 20, "image_id=99 is not in 'images'"),
    "unknown category": (bad_ann(category_id=77), 0, 20, r"category_id=77 is not among the categories \(known ids"),
    "duplicate annotation id": (bad_ann(id=10), 0, 10, "annotation id 10 appears again at annotations"),
    "annotation not a dict": (add("annotations", 5), None, "annotations[2]", "not a dict: 5"),
    "image size differs from the file": (set_image(1, height=H + 1), 1, None,
                                         rf"b.png is {W}x{H} \(WxH\) but the json says {W}x{H + 1}"),
    "duplicate image id": (add("images", {"id": 1, "file_name": "c.png", "height": H, "width": W}), 1, None,
                           "image id 1 is used by 2 image records"),
    "malformed image record": (add("images", {"id": 5, "file_name": "c.png", "height": H}), 5, None,
                               r"images\[2\] needs an integer 'id', a 'file_name' and positive"),
    "unreadable image file": (corrupt_b, 1, None, "b.png is not a readable image"),
}


@pytest.mark.parametrize("kind", CASES)
def test_error_mode_stops_with_file_and_ids(tmp_path, kind):
    change, image_id, ann_id, reason = CASES[kind]
    write_set(tmp_path, change)
    ids = f"image id={image_id!r}"
    if ann_id is not None:
        ids = (ann_id if isinstance(ann_id, str) else f"annotation id={ann_id}") + f" ({ids})"
    with pytest.raises(SegkitError) as caught:
        CocoSegDataset(tmp_path, cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'train.json'}: {ids}: "), message
    assert re.search(reason, message), message
    assert message.endswith("set data.on_bad_annotation='skip' to leave such records out")


@pytest.mark.parametrize("kind", CASES)
def test_skip_mode_leaves_the_record_out_and_reports_it(tmp_path, kind, caplog):
    change, image_id, ann_id, reason = CASES[kind]
    write_set(tmp_path, change)
    with caplog.at_level(logging.WARNING, logger="segkit.data"):
        ds = CocoSegDataset(tmp_path, on_bad_annotation="skip", cache_dir=tmp_path / "cache")
    assert len(ds.skipped) == (2 if kind == "duplicate image id" else 1)  # both records with the clashing id
    entry = ds.skipped[0]
    assert (entry["image_id"], entry["annotation_id"]) == (image_id, ann_id)
    assert re.search(reason, entry["reason"]), entry
    report = json.loads(ds.skip_report.read_text())
    assert report == {"ann_file": str(tmp_path / "train.json"), "skipped": ds.skipped}
    assert ds.skip_report.parent == tmp_path / "cache" / "skipped"
    assert f"report: {ds.skip_report}" in caplog.text
    # What is left is intact: image 0 keeps its can wherever it is still listed, nothing else was painted.
    image_gone = kind in ("image size differs from the file", "duplicate image id", "unreadable image file")
    assert [info["id"] for info in ds.images] == ([0] if image_gone else [0, 1])
    expected = np.zeros((H, W), np.uint8)
    expected[1:3, 1:3] = 1
    np.testing.assert_array_equal(ds.mask(0), expected)


def test_report_path_can_be_chosen_and_clean_sets_write_none(tmp_path):
    write_set(tmp_path / "bad", bad_ann(category_id=77))
    ds = CocoSegDataset(tmp_path / "bad", on_bad_annotation="skip", cache=False, report=tmp_path / "out" / "r.json")
    assert ds.skip_report == tmp_path / "out" / "r.json" and ds.skip_report.is_file()
    write_set(tmp_path / "good", lambda coco, root: None)
    ds = CocoSegDataset(tmp_path / "good", on_bad_annotation="skip", cache_dir=tmp_path / "cache")
    assert ds.skipped == [] and ds.skip_report is None and not (tmp_path / "cache" / "skipped").exists()


def test_missing_files_stop_in_both_modes(tmp_path):
    """A missing photo usually means a wrong img_dir: skipping would train on nothing, so it stops."""
    write_set(tmp_path, lambda coco, root: (root / "images" / "b.png").unlink())
    for mode in ("error", "skip"):
        with pytest.raises(SegkitError, match=r"1 of 2 listed images are missing .*b.png; check data.img_dir"):
            CocoSegDataset(tmp_path, on_bad_annotation=mode, cache=False)
