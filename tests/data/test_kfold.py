from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from segkit.cli.kfold_split import main
from segkit.data.kfold import assign_folds, merge, read_coco
from segkit.errors import SegkitError

CATEGORIES = [{"id": c, "name": f"cat{c}"} for c in range(6)]


def make_coco(num_images: int = 80, folders: int = 16, seed: int = 0, first_id: int = 0) -> dict:
    """Images in ``folders`` folders; classes 0..4 common to rare (class 5 in two images), 1-3 per image."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(num_images):
        image_id = first_id + i
        images.append({"id": image_id, "file_name": f"f{i % folders}/{seed}_{i}.jpg", "width": 64, "height": 48})
        present = rng.choice(5, size=int(rng.integers(1, 4)), replace=False, p=[0.4, 0.25, 0.2, 0.1, 0.05])
        for cat in [*present, *([5] if i in (3, 40) else [])]:
            anns.append({"id": first_id + len(anns), "image_id": image_id, "category_id": int(cat),
                         "segmentation": [[0, 0, 10, 0, 10, 10]], "area": 50.0, "bbox": [0, 0, 10, 10],
                         "iscrowd": 0})
    return {"info": {"seed": seed}, "images": images, "annotations": anns, "categories": CATEGORIES}


def write(path: Path, coco: dict) -> Path:
    path.write_text(json.dumps(coco), encoding="utf-8")
    return path


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_image_in_exactly_one_val_fold_and_train_is_the_rest(tmp_path, capsys):
    coco = make_coco()
    ann = write(tmp_path / "train.json", coco)
    assert main([str(ann), "--folds", "4", "--out", str(tmp_path / "out")]) == 0
    assert "| cat0 |" in capsys.readouterr().out
    all_ids = {img["id"] for img in coco["images"]}
    seen: Counter = Counter()
    for k in range(4):
        val, train = load(tmp_path / "out" / f"val_{k}.json"), load(tmp_path / "out" / f"train_{k}.json")
        val_ids, train_ids = {i["id"] for i in val["images"]}, {i["id"] for i in train["images"]}
        assert val_ids | train_ids == all_ids and not val_ids & train_ids
        seen.update(val_ids)
        for part, ids in ((val, val_ids), (train, train_ids)):
            assert {a["image_id"] for a in part["annotations"]} <= ids
            assert part["categories"] == CATEGORIES and part["info"] == coco["info"]
        assert len(val["annotations"]) + len(train["annotations"]) == len(coco["annotations"])
    assert set(seen) == all_ids and set(seen.values()) == {1}
    assert "fold 3" in (tmp_path / "out" / "kfold_report.md").read_text()


def test_classes_are_spread_evenly_over_folds():
    coco = make_coco(num_images=100)
    folds = assign_folds(coco, 5, seed=3)
    fold_of = {img["id"]: f for img, f in zip(coco["images"], folds)}
    images_of: dict[int, set[int]] = {}
    for a in coco["annotations"]:
        images_of.setdefault(a["category_id"], set()).add(a["image_id"])
    for cat, ids in images_of.items():
        per_fold = Counter(fold_of[i] for i in ids)
        assert all(abs(per_fold[k] - len(ids) / 5) <= 1.5 for k in range(5)), (cat, per_fold)
    assert max(Counter(folds).values()) - min(Counter(folds).values()) <= 4


def test_groups_stay_together_and_folds_stay_balanced():
    coco = make_coco(num_images=80, folders=16)
    folds = assign_folds(coco, 4, seed=0, group_by="folder")
    by_folder: dict[str, set[int]] = {}
    for img, f in zip(coco["images"], folds):
        by_folder.setdefault(img["file_name"].split("/")[0], set()).add(f)
    assert all(len(f) == 1 for f in by_folder.values())
    assert sorted(Counter(folds).values()) == [20, 20, 20, 20]  # 16 groups of 5 -> 4 per fold


def test_unstratified_folds_are_random_equal_sized_and_keep_groups():
    coco = make_coco(num_images=82, folders=82)
    folds = assign_folds(coco, 4, seed=1, stratify=False)
    assert sorted(Counter(folds).values()) == [20, 20, 21, 21]
    assert folds != assign_folds(coco, 4, seed=2, stratify=False)
    assert folds != assign_folds(coco, 4, seed=1)  # not the stratified assignment
    grouped = assign_folds(make_coco(num_images=80, folders=16), 4, seed=0, group_by="folder", stratify=False)
    by_folder: dict[int, set[int]] = {}
    for i, f in enumerate(grouped):
        by_folder.setdefault(i % 16, set()).add(f)
    assert all(len(f) == 1 for f in by_folder.values()) and sorted(Counter(grouped).values()) == [20] * 4


def test_same_seed_same_folds_other_seed_other_folds(tmp_path):
    ann = write(tmp_path / "train.json", make_coco())
    for name in ("a", "b"):
        assert main([str(ann), "--folds", "3", "--seed", "5", "--out", str(tmp_path / name)]) == 0
    for k in range(3):
        assert (tmp_path / "a" / f"val_{k}.json").read_bytes() == (tmp_path / "b" / f"val_{k}.json").read_bytes()
    coco = read_coco(ann)
    assert assign_folds(coco, 3, seed=5) != assign_folds(coco, 3, seed=6)


def test_merge_renumbers_clashing_ids_and_folds_cover_both_files(tmp_path):
    train = make_coco(num_images=30, seed=0)
    val = make_coco(num_images=10, seed=1)  # ids 0..9 clash with train's
    a, b = write(tmp_path / "train.json", train), write(tmp_path / "val.json", val)
    assert main([str(a), "--folds", "5", "--out", str(tmp_path / "out"), "--merge", str(b)]) == 0
    merged = load(tmp_path / "out" / "train_all.json")
    assert len(merged["images"]) == 40 and len({i["id"] for i in merged["images"]}) == 40
    assert len({a["id"] for a in merged["annotations"]}) == len(train["annotations"]) + len(val["annotations"])
    by_file = {i["file_name"]: i["id"] for i in merged["images"]}
    expected = Counter((img["file_name"], a["category_id"]) for coco in (train, val) for img in coco["images"]
                       for a in coco["annotations"] if a["image_id"] == img["id"])
    names = {v: k for k, v in by_file.items()}
    assert Counter((names[a["image_id"]], a["category_id"]) for a in merged["annotations"]) == expected
    val_images = sum(len(load(tmp_path / "out" / f"val_{k}.json")["images"]) for k in range(5))
    assert val_images == 40


def test_merge_refuses_different_categories_and_shared_images():
    train = make_coco(num_images=5)
    other = {**make_coco(num_images=5, seed=1), "categories": CATEGORIES[:3]}
    with pytest.raises(SegkitError, match="categories differ"):
        merge(train, other, ("train.json", "val.json"))
    with pytest.raises(SegkitError, match="also in train.json"):
        merge(train, train, ("train.json", "train.json"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--folds", "1"], "--folds 1: need at least 2 folds"),
        (["--folds", "30"], "--folds 30: only 20 images"),
        (["--folds", "5", "--group-by", "folder"], "--folds 5: only 4 groups"),
        (["--group-by", "video_id"], "image id 0 has no field 'video_id'"),
        (["--merge", "missing.json"], "missing.json: annotation file not found"),
    ],
)
def test_errors_are_one_line(tmp_path, capsys, args, message):
    ann = write(tmp_path / "train.json", make_coco(num_images=20, folders=4))
    args = [a.replace("missing.json", str(tmp_path / "missing.json")) for a in args]
    assert main([str(ann), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("segkit: error: ") and message in err and err.count("\n") == 1


def test_bad_json_and_unknown_image_are_reported(tmp_path, capsys):
    (tmp_path / "bad.json").write_text('{"images": [}')
    assert main([str(tmp_path / "bad.json"), "--out", str(tmp_path / "o")]) == 2
    assert "bad.json:1:" in capsys.readouterr().err
    coco = make_coco(num_images=4)
    coco["annotations"][0]["image_id"] = 99
    assert main([str(write(tmp_path / "t.json", coco)), "--out", str(tmp_path / "o")]) == 2
    assert "image_id=99, which is not in 'images'" in capsys.readouterr().err
