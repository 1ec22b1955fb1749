from __future__ import annotations

import json
import logging
import multiprocessing
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import segkit.data.coco as coco_module
from segkit.data.coco import CocoSegDataset
from segkit.data.mask_cache import MaskCache, decode_mask, encode_mask, mask_key
from segkit.errors import SegkitError

H, W = 6, 8
ANNS = [{"id": 1, "category_id": 1, "segmentation": [[1, 1, 5, 1, 5, 4, 1, 4]], "iscrowd": 0},
        {"id": 2, "category_id": 2, "segmentation": [[2, 2, 7, 2, 7, 6]], "iscrowd": 0}]


def write_set(root: Path) -> None:
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "a.png"), np.zeros((H, W, 3), np.uint8))
    coco = {"images": [{"id": 0, "file_name": "a.png", "height": H, "width": W}],
            "categories": [{"id": 1, "name": "can"}, {"id": 2, "name": "paper"}],
            "annotations": [{**ann, "image_id": 0} for ann in ANNS]}
    (root / "train.json").write_text(json.dumps(coco))


@pytest.mark.parametrize("shape", [(1, 1), (6, 8), (37, 5)])
def test_runs_round_trip_and_reject_anything_else(shape):
    rng = np.random.default_rng(0)
    mask = np.repeat(rng.integers(0, 256, shape[0] * shape[1] // 3 + 1, dtype=np.uint8), 3)[: shape[0] * shape[1]]
    mask = mask.reshape(shape)
    data = encode_mask(mask)
    np.testing.assert_array_equal(decode_mask(data, *shape), mask)
    assert decode_mask(data[:-1], *shape) is None  # truncated
    assert decode_mask(b"XYZ" + data[3:], *shape) is None  # another format or version
    assert decode_mask(data, shape[0] + 1, shape[1]) is None  # another image size
    lengths_start = 16
    tampered = bytearray(data)
    tampered[lengths_start] ^= 1  # run lengths no longer add up to the image
    assert decode_mask(bytes(tampered), *shape) is None


def test_key_follows_everything_the_mask_depends_on():
    base = mask_key(ANNS, H, W, {1: 1, 2: 2}, "area_desc", "paint")
    assert base == mask_key(json.loads(json.dumps(ANNS)), H, W, {2: 2, 1: 1}, "area_desc", "paint")
    moved = [ANNS[0], {**ANNS[1], "segmentation": [[2, 2, 7, 2, 7, 5]]}]
    variants = [
        mask_key(moved, H, W, {1: 1, 2: 2}, "area_desc", "paint"),
        mask_key(ANNS[::-1], H, W, {1: 1, 2: 2}, "area_desc", "paint"),  # order decides ties
        mask_key([ANNS[0], {**ANNS[1], "category_id": 1}], H, W, {1: 1, 2: 2}, "area_desc", "paint"),
        mask_key([ANNS[0], {**ANNS[1], "iscrowd": 1}], H, W, {1: 1, 2: 2}, "area_desc", "paint"),
        mask_key(ANNS, H, W, {1: 1, 2: 1}, "area_desc", "paint"),
        mask_key(ANNS, H, W, {1: 1, 2: 2}, "max_class", "paint"),
        mask_key(ANNS, H, W, {1: 1, 2: 2}, "area_desc", "ignore"),
        mask_key(ANNS, H + 1, W, {1: 1, 2: 2}, "area_desc", "paint"),
        mask_key(ANNS, H, W, {1: 1, 2: 2}, "area_desc", "ignore", 254),  # crowd regions get another value
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert mask_key([{**ANNS[0], "id": 99, "area": 5.0, "bbox": [0, 0, 1, 1]}, ANNS[1]], H, W, {1: 1, 2: 2},
                    "area_desc", "paint") == base  # fields the mask does not depend on


def test_dataset_writes_once_then_reads_and_rebuilds_on_any_change(tmp_path, monkeypatch):
    write_set(tmp_path)
    cache_dir = tmp_path / "cache"
    fresh = CocoSegDataset(tmp_path, cache_dir=cache_dir).mask(0)
    files = list(cache_dir.rglob("*.skm"))
    assert len(files) == 1

    def no_rasterising(*args, **kwargs):
        raise AssertionError("a warm cache must not rasterise")

    with monkeypatch.context() as patch:
        patch.setattr(coco_module, "rasterize", no_rasterising)
        np.testing.assert_array_equal(CocoSegDataset(tmp_path, cache_dir=cache_dir).mask(0), fresh)
        with pytest.raises(AssertionError, match="must not rasterise"):  # a new policy is a new key
            CocoSegDataset(tmp_path, cache_dir=cache_dir, overlap="max_class").mask(0)
    CocoSegDataset(tmp_path, cache_dir=cache_dir, overlap="max_class").mask(0)
    CocoSegDataset(tmp_path, cache_dir=cache_dir, classes={"can": 1, "paper": 0}).mask(0)
    assert len(list(cache_dir.rglob("*.skm"))) == 3
    files[0].write_bytes(b"torn")  # a damaged file is a miss, then rewritten
    np.testing.assert_array_equal(CocoSegDataset(tmp_path, cache_dir=cache_dir).mask(0), fresh)
    assert decode_mask(files[0].read_bytes(), H, W) is not None


def test_cache_off_writes_nothing(tmp_path):
    write_set(tmp_path)
    ds = CocoSegDataset(tmp_path, cache=False, cache_dir=tmp_path / "cache")
    assert ds.cache is None and ds.mask(0).any() and not (tmp_path / "cache").exists()


def test_unusable_cache_folder(tmp_path, monkeypatch, caplog):
    write_set(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(SegkitError, match=r"data.cache_dir: cannot create the mask cache folder .*data.cache=False"):
        CocoSegDataset(tmp_path, cache_dir=tmp_path / "file" / "masks")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # the default is unusable: slower, not broken
    with caplog.at_level(logging.WARNING, logger="segkit.data"):
        ds = CocoSegDataset(tmp_path)
    assert ds.cache is None and ds.mask(0).any() and "masks will be rebuilt every epoch" in caplog.text


def test_failed_write_is_logged_once_and_not_fatal(tmp_path, caplog):
    cache = MaskCache(tmp_path / "cache")
    (tmp_path / "cache" / "ab").write_text("a file where the folder should be")
    with caplog.at_level(logging.WARNING, logger="segkit.data"):
        cache.save("ab01", np.ones((2, 2), np.uint8))
        cache.save("ab02", np.ones((2, 2), np.uint8))
    assert caplog.text.count("mask cache: cannot write") == 1 and cache.load("ab01", 2, 2) is None


KEY = "cd" + "0" * 30


def _mask(value: int) -> np.ndarray:
    mask = np.full((300, 200), value, np.uint8)
    mask[::7] = 255 - value  # many runs, so every write takes a while
    return mask


def _writer(root: str, value: int, count: int) -> None:
    cache = MaskCache(root)
    for _ in range(count):
        cache.save(KEY, _mask(value))


def test_concurrent_writers_never_leave_a_torn_file(tmp_path):
    """Two processes rewrite one key while this one reads the raw file: it is always one complete write."""
    complete = {encode_mask(_mask(1)), encode_mask(_mask(2))}
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    writers = [context.Process(target=_writer, args=(str(tmp_path), value, 150)) for value in (1, 2)]
    for writer in writers:
        writer.start()
    path, reads = MaskCache(tmp_path).path(KEY), 0
    while any(writer.is_alive() for writer in writers):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        assert data in complete
        reads += 1
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert reads > 0 and path.read_bytes() in complete
    assert os.listdir(path.parent) == [path.name]  # no temporary file is left behind
