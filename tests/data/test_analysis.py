from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from segkit.cli.analyze_dataset import main
from segkit.data.analysis import collect, size_counts

TACO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "taco" / "annotations.json"


def square(ann_id: int, image_id: int, cat: int, side: int, area: bool = True) -> dict:
    ann = {"id": ann_id, "image_id": image_id, "category_id": cat, "iscrowd": 0,
           "segmentation": [[0, 0, side, 0, side, side, 0, side]]}
    if area:
        ann["area"] = float(side * side)
    return ann


def small_coco() -> dict:
    """Two 200x100 images and one 100x100: objects of 10^2 (small), 50^2 (medium), 100^2 (large) pixels."""
    return {
        "images": [{"id": 1, "width": 200, "height": 100, "file_name": "a.jpg"},
                   {"id": 2, "width": 200, "height": 100, "file_name": "b.jpg"},
                   {"id": 3, "width": 100, "height": 100, "file_name": "c.jpg"}],
        "categories": [{"id": 7, "name": "can"}, {"id": 3, "name": "bottle"}],
        "annotations": [square(1, 1, 7, 10), square(2, 1, 3, 50), square(3, 2, 3, 100, area=False)],
    }


def write(path: Path, coco: dict) -> Path:
    path.write_text(json.dumps(coco), encoding="utf-8")
    return path


def test_statistics_from_areas_and_segmentations(tmp_path):
    coco = small_coco()
    coco["annotations"].append({"id": 9, "image_id": 3, "category_id": 7, "segmentation": [[1, 2]]})
    stats = collect(write(tmp_path / "a.json", coco), progress=False)
    assert stats.classes == ["bottle", "can"]  # by category id
    assert stats.objects_per_class.tolist() == [2, 2]
    assert stats.images_with_class.tolist() == [2, 2]
    assert stats.objects_per_image.tolist() == [2, 1, 1]
    assert stats.no_area == [9]  # counted as an object, left out of sizes and pixel shares
    assert sorted(stats.area.tolist()) == [100.0, 2500.0, 10000.0]  # the last one from its polygon
    assert size_counts(stats).tolist() == [[0, 1, 1], [1, 0, 0]]
    # per-image fractions averaged over the 3 images: bottle 2500/20000 + 10000/20000, can 100/20000
    assert stats.pixel_share == pytest.approx([(0.125 + 0.5) / 3, 0.005 / 3])
    assert stats.image_sizes == {(200, 100): 2, (100, 100): 1}


def test_cli_writes_plots_and_summary_comparing_files(tmp_path, capsys):
    a = write(tmp_path / "train.json", small_coco())
    other = small_coco()
    other["categories"].append({"id": 9, "name": "bag"})
    other["annotations"].append(square(4, 3, 9, 20))
    b = write(tmp_path / "val.json", other)
    assert main([str(a), str(b), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "train.json: 3 images, 3 objects, 2 classes" in capsys.readouterr().out
    summary = (tmp_path / "out" / "summary.md").read_text()
    links = [line.split("](")[1].rstrip(")") for line in summary.splitlines() if line.startswith("![")]
    assert len(links) == 6
    for name in links:
        image = cv2.imread(str(tmp_path / "out" / name))
        assert image is not None and image.shape[0] > 300 and image.std() > 10, name
    assert "| bag | 0 | 0 | 0 | 0 / 0 / 0 | 1 | 1 |" in summary
    assert "| train.json | 3 | 1 | 3 |" in summary


def test_errors_are_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.json: annotation file not found" in capsys.readouterr().err
    coco = small_coco()
    coco["annotations"][0]["category_id"] = 42
    assert main([str(write(tmp_path / "x.json", coco)), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "category_id=42, which is not in 'categories'" in err and err.count("\n") == 1


def test_taco_statistics():
    if not TACO.is_file():
        pytest.skip(f"TACO annotations not found at {TACO} (../shared/data beside the checkout)")
    stats = collect(TACO, progress=False)
    assert stats.num_images == 1500 and len(stats.classes) == 60 and stats.objects_per_image.sum() == 4784
    assert not stats.no_area
    assert stats.classes[int(np.argmax(stats.objects_per_class))] == "Cigarette"
