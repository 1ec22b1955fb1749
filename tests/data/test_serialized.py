"""Serialized dataset records: lists and id maps that hold two NumPy arrays, not one Python object per record."""

from __future__ import annotations

import gc
import json
import pickle
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segkit.config import Config
from segkit.data import coco as coco_module
from segkit.data.coco import CocoSegDataset
from segkit.data.loader import build_dataloader
from segkit.data.serialized import RecordsById, SerializedList

RECORDS = [{"id": 7, "anns": [[1.5, 2.0]]}, {"id": 3, "anns": []}, {"id": 12, "name": "ü"}]


def test_serialized_list_reads_back_every_record_as_a_fresh_copy():
    items = SerializedList(RECORDS)
    assert len(items) == 3 and list(items) == RECORDS and items[-1] == RECORDS[2] and items[1:] == RECORDS[1:]
    items[0]["anns"].append("changed")
    assert items[0] == RECORDS[0]  # the stored bytes are never touched
    with pytest.raises(IndexError, match="record 3 out of range for 3 records"):
        items[3]
    assert len(SerializedList([])) == 0 and list(SerializedList([])) == []
    assert list(pickle.loads(pickle.dumps(items))) == RECORDS  # spawn-started workers receive it pickled


def test_records_by_id_looks_ids_up_without_a_dict():
    by_id = RecordsById([r["id"] for r in RECORDS], SerializedList(RECORDS))
    assert by_id[12] == RECORDS[2] and by_id.get(3) == RECORDS[1] and by_id.get(4, []) == []
    assert list(by_id) == [7, 3, 12] and len(by_id) == 3 and 7 in by_id and "7" not in by_id and True not in by_id
    assert by_id.position(np.int64(3)) == 1 and by_id.position(100) is None
    with pytest.raises(KeyError):
        by_id[5]


def write_coco(root: Path, images: int) -> None:
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "x.png"), np.full((16, 16, 3), 40, np.uint8))
    records = [{"id": 100 + i, "file_name": "x.png", "height": 16, "width": 16} for i in range(images)]
    anns = [{"id": k, "image_id": 100 + k // 3, "category_id": 1 + k % 2, "iscrowd": 0,
             "segmentation": [[1, 1, 9, 1, 9, 9 - k % 3, 1, 9]]} for k in range(3 * images)]
    cats = [{"id": 1, "name": "can"}, {"id": 2, "name": "paper"}]
    (root / "train.json").write_text(json.dumps({"images": records, "annotations": anns, "categories": cats}))


def reachable_objects(root: object) -> int:
    """Python objects reachable from ``root`` (what a worker reading the dataset could touch), classes aside."""
    seen, stack = {id(root)}, [root]
    while stack:
        for child in gc.get_referents(stack.pop()):
            if id(child) not in seen and not isinstance(child, type | types.ModuleType):
                seen.add(id(child))
                stack.append(child)
    return len(seen)


def test_the_dataset_holds_no_python_object_per_image_or_annotation(tmp_path):
    write_coco(tmp_path / "small", 4)
    write_coco(tmp_path / "large", 80)
    small = CocoSegDataset(tmp_path / "small", cache_dir=tmp_path / "cache")
    large = CocoSegDataset(tmp_path / "large", cache_dir=tmp_path / "cache")
    assert reachable_objects(large) == reachable_objects(small)
    assert len(large.images) == 80 and large.images[5] == {"id": 105, "file_name": "x.png", "height": 16,
                                                           "width": 16}
    assert [a["id"] for a in large.anns_by_image[105]] == [15, 16, 17] == [a["id"] for a in large.annotations(5)]


def test_mask_keys_are_hashed_once_in_the_parent(tmp_path, monkeypatch):
    write_coco(tmp_path, 3)
    dataset = CocoSegDataset(tmp_path, cache_dir=tmp_path / "cache")
    expected = [dataset.mask(i) for i in range(3)]

    def no_hashing(*args, **kwargs):
        raise AssertionError("mask_key called after construction")

    monkeypatch.setattr(coco_module, "mask_key", no_hashing)
    for i in range(3):
        np.testing.assert_array_equal(dataset.mask(i), expected[i])  # from the cache, under the parent's keys


def test_training_workers_persist_and_evaluation_workers_exit_after_each_pass(tmp_path):
    write_coco(tmp_path, 4)
    dataset = CocoSegDataset(tmp_path, cache_dir=tmp_path / "cache")
    cfg = Config({"data": {"batch_size": 2, "val_batch_size": None, "num_workers": 1}})
    train, val = build_dataloader(cfg, "train", dataset), build_dataloader(cfg, "val", dataset)
    assert train.persistent_workers and not val.persistent_workers
    assert torch.equal(next(iter(val))["mask"], torch.from_numpy(dataset.mask(0))[None])
