"""``tools/pseudo_label.py`` end to end: round trip through segkit's loader, pycocotools, the leak guard, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

import segkit.cli.pseudo_label as pseudo_cli
from segkit.config import load_config
from segkit.data.coco import CocoSegDataset
from segkit.engine.checkpoint import save_checkpoint
from segkit.engine.provenance import config_hash
from segkit.engine.trainer import Trainer
from segkit.inference.checkpoints import load_predictor
from segkit.inference.sources import open_source

SIZES = [(37, 23), (48, 64), (51, 50), (64, 64), (29, 77)]  # (height, width): non-square, odd


@pytest.fixture(scope="module")
def teacher(tiny_demo, tmp_path_factory) -> dict[str, Path]:
    """A checkpoint of the tiny demo config (initial weights: enough for the mechanics), and unlabelled images of
    several sizes cut from the demo's test images."""
    folder = tmp_path_factory.mktemp("pseudo_teacher")
    config = folder / "teacher.py"
    config.write_text(f'_base_ = ["{Path(__file__).resolve().parents[2]}/configs/demo_unet.py"]\n'
                      f'data = dict(root="{tiny_demo}", num_workers=0, batch_size=4, train=dict(pipeline=[]))\n'
                      "model = dict(decoder_channels=(32, 16, 16, 8, 8))\n")
    trainer = Trainer(load_config(config), folder / "run", torch.device("cpu"), progress=False)
    save_checkpoint(trainer.state_dict(), folder / "teacher.pth")
    unlabelled = folder / "unlabelled"
    unlabelled.mkdir()
    source = cv2.imread(str(tiny_demo / "images" / "test" / "0000.jpg"))
    for k, (h, w) in enumerate(SIZES):
        picture = cv2.resize(np.roll(source, 7 * k, axis=1), (w, h), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(unlabelled / f"img_{k}.png"), picture)
    return {"config": config, "ckpt": folder / "teacher.pth", "images": unlabelled, "root": tiny_demo}


def run(teacher, out: Path, *extra: str) -> int:
    return pseudo_cli.main([str(teacher["config"]), str(teacher["ckpt"]), "--input", str(teacher["images"]),
                            "--out", str(out), "--no-progress", "--device", "cpu", *extra])


def teacher_maps(teacher) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The teacher's argmax and max probability per image, straight from the Predictor, at the resolution the
    thresholds see (1 - p rounded to float16)."""
    predictor = load_predictor([teacher["ckpt"]], load_config(teacher["config"]), device="cpu")
    maps = {}
    for info, pred in predictor.stream(open_source(teacher["images"]).decoded()):
        doubt = (np.float32(1) - pred.probs.max(dim=0).values.numpy()).astype(np.float16)
        maps[info.name] = (pred.labels.numpy().astype(np.uint8), 1.0 - doubt.astype(np.float64))
    return maps


def loaded_masks(teacher, out: Path) -> dict[str, np.ndarray]:
    dataset = CocoSegDataset(out.parent, ann=out.name, img_dir=str(teacher["images"]), cache=False)
    return {dataset.images[i]["file_name"]: dataset.mask(i) for i in range(len(dataset))}


def test_masks_read_back_equal_the_teachers_argmax_where_confident_and_ignore_elsewhere(teacher, tmp_path,
                                                                                        monkeypatch):
    maps = teacher_maps(teacher)
    confidences = np.concatenate([conf.ravel() for _, conf in maps.values()])
    threshold = float(np.median(confidences))  # a pixel's confidence: half the pixels are kept
    out = tmp_path / "pseudo.json"
    monkeypatch.chdir(teacher["ckpt"].parent)  # the checkpoint given relative to here
    assert pseudo_cli.main([str(teacher["config"]), teacher["ckpt"].name, "--input", str(teacher["images"]),
                            "--out", str(out), "--no-progress", "--device", "cpu", "--threshold", repr(threshold)]) == 0
    masks = loaded_masks(teacher, out)
    assert sorted(masks) == sorted(maps) and len(masks) == len(SIZES)
    kept = 0
    for name, (labels, conf) in maps.items():
        expected = np.where(conf.astype(np.float64) >= threshold, labels, 255)
        assert masks[name].shape == labels.shape
        assert np.array_equal(masks[name], expected), name
        kept += int((expected != 255).sum())
    assert 0 < kept < confidences.size

    coco = COCO(str(out))  # pycocotools reads the file; its class regions are segkit's
    training = json.loads((teacher["root"] / "train.json").read_text())
    assert coco.dataset["categories"] == training["categories"]
    for image in coco.dataset["images"]:
        path = teacher["images"] / image["file_name"]
        assert image["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (image["height"], image["width"]) == masks[image["file_name"]].shape
        for ann in coco.imgToAnns[image["id"]]:
            region = coco.annToMask(ann).astype(bool)
            index = ann["category_id"] + 1  # demo category ids 0..5 are classes 1..6
            assert np.array_equal(region, masks[image["file_name"]] == index)
            assert ann["area"] == region.sum() and ann["iscrowd"] == 0

    info = coco.dataset["info"]  # the teacher: files by content, configs by hash, paths as given and absolute
    state = torch.load(teacher["ckpt"], weights_only=True)
    assert info["checkpoints"] == [{"path": "teacher.pth", "absolute": str(teacher["ckpt"].resolve()),
                                    "sha256": hashlib.sha256(teacher["ckpt"].read_bytes()).hexdigest(),
                                    "config_hash": config_hash(state["config"])}]
    cfg = load_config(teacher["config"])
    cfg.train.device = "cpu"
    assert info["config"] == {"path": str(teacher["config"]), "absolute": str(teacher["config"].resolve()),
                              "config_hash": config_hash(cfg.to_dict())}
    assert info["tta"] == {"mode": "none", "scales": [1.0], "merge": "prob"} and info["window"] is None
    assert info["rule"] == f"threshold {threshold:g}" and info["input"]["path"] == str(teacher["images"])


def test_class_balanced_keeps_each_classes_top_fraction_over_all_images(teacher, tmp_path):
    maps = teacher_maps(teacher)
    labels = np.concatenate([lab.ravel() for lab, _ in maps.values()])
    conf = np.concatenate([c.ravel() for _, c in maps.values()]).astype(np.float64)
    thresholds = np.full(256, np.inf)
    for c in np.unique(labels):  # independent: sort each class's confidences, take the p-th from the top
        ranked = np.sort(conf[labels == c])[::-1]
        thresholds[c] = ranked[int(np.ceil(0.3 * ranked.size)) - 1]
    out = tmp_path / "cbst.json"
    report = tmp_path / "report" / "report.md"
    assert run(teacher, out, "--class-balanced", "0.3", "--report", str(report)) == 0
    masks = loaded_masks(teacher, out)
    for name, (lab, c) in maps.items():
        assert np.array_equal(masks[name], np.where(c.astype(np.float64) >= thresholds[lab], lab, 255)), name
    text = report.read_text()
    assert "| class | predicted px | threshold | kept px | kept |" in text and "Images with nothing confident" in text
    assert (report.parent / "report_confidence.png").stat().st_size > 1000
    assert not list(tmp_path.glob(".segkit-pseudo-*"))  # the stored maps are gone


def test_min_area_sends_small_regions_to_ignore(teacher, tmp_path):
    out = tmp_path / "area.json"
    assert run(teacher, out, "--threshold", "0.01", "--min-area", "40") == 0
    import segkit.inference.confidence as confidence

    for name, mask in loaded_masks(teacher, out).items():
        checked = mask.copy()
        confidence.remove_small_regions(checked, 40, 255)
        assert np.array_equal(checked, mask), name  # nothing small is left
        for c in np.unique(mask[mask != 255]):
            count, _, stats, _ = cv2.connectedComponentsWithStats((mask == c).astype(np.uint8), connectivity=8)
            assert (stats[1:, cv2.CC_STAT_AREA] >= 40).all()


def one_line_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("segkit: error: "), lines
    return lines[0]


@pytest.mark.parametrize(("args", "message"), [
    (["--threshold", "1.0"], "--threshold 1.0: the confidence threshold must lie in (0, 1)"),
    (["--threshold", "0"], "--threshold 0: the confidence threshold must lie in (0, 1)"),
    (["--threshold", "high"], "--threshold 'high': expected a number"),
    (["--class-balanced", "0"], "--class-balanced 0: the kept fraction must lie in (0, 1]"),
    (["--class-balanced", "1.5"], "--class-balanced 1.5: the kept fraction must lie in (0, 1]"),
    (["--threshold", "0.9", "--class-balanced", "0.5"], "give --threshold or --class-balanced, not both"),
    (["--min-area", "-3"], "--min-area -3: give a pixel count >= 0"),
    (["--set", "data.classes=['Paper','Metal']"], "trained on classes ['Background', 'Paper', 'Metal', 'Glass'"),
])
def test_bad_options_are_one_line_errors_and_write_nothing(teacher, tmp_path, capsys, args, message):
    out = tmp_path / "out" / "pseudo.json"
    assert run(teacher, out, "--report", str(tmp_path / "out" / "r.md"), *args) == 2
    assert message in one_line_error(capsys)
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_output_paths_are_checked_before_anything_is_loaded(teacher, tmp_path, capsys, monkeypatch):
    def loaded(args):
        raise AssertionError("the config was loaded before the output paths were checked")

    monkeypatch.setattr(pseudo_cli, "load_cli_config", loaded)
    (tmp_path / "taken.json").mkdir()
    (tmp_path / "notes.txt").write_text("a file")
    cases = [(tmp_path / "taken.json", "is a folder; give a file path"),
             (tmp_path / "notes.txt" / "pseudo.json", "notes.txt is a file, not a folder"),
             (tmp_path / "notes.txt" / "deeper" / "pseudo.json", "notes.txt is a file, not a folder")]
    if Path("/proc/self").is_dir():  # read-only even for root
        cases += [(Path("/proc/segkit-missing/pseudo.json"), "cannot write in /proc"),
                  (Path("/proc/pseudo.json"), "cannot write in /proc")]
    for out, message in cases:
        assert run(teacher, out) == 2
        assert f"--out {out}" in (line := one_line_error(capsys)) and message in line
    assert run(teacher, tmp_path / "out.json", "--report", str(tmp_path / "notes.txt" / "r.md")) == 2
    assert "--report" in (line := one_line_error(capsys)) and "notes.txt is a file" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "taken.json"]
    assert (tmp_path / "notes.txt").read_text() == "a file"


def test_bad_inputs_are_one_line_errors_and_write_nothing(teacher, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "pseudo.json"
    assert pseudo_cli.main([str(teacher["config"]), str(teacher["ckpt"]), "--input", str(empty), "--out", str(out),
                            "--no-progress"]) == 2
    assert "the folder holds no files" in one_line_error(capsys)

    other = json.loads((teacher["root"] / "test.json").read_text())
    other["categories"] = other["categories"][:3]
    other_json = tmp_path / "other.json"
    other_json.write_text(json.dumps(other))
    assert pseudo_cli.main([str(teacher["config"]), str(teacher["ckpt"]), "--input", str(other_json),
                            "--img-dir", str(teacher["root"] / "images"), "--out", str(out), "--no-progress"]) == 2
    assert "its categories give the classes ['Paper', 'Metal', 'Glass']" in one_line_error(capsys)

    out.write_text("earlier pseudo-labels")
    assert run(teacher, out) == 2
    assert f"{out} already exists; pass --overwrite" in one_line_error(capsys)
    assert out.read_text() == "earlier pseudo-labels"
    assert run(teacher, out, "--overwrite") == 0 and json.loads(out.read_text())["images"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "other.json", "pseudo.json"]


def test_the_leak_guard_refuses_validation_images_by_name_and_by_content(teacher, tmp_path, capsys):
    root = teacher["root"]
    val = json.loads((root / "val.json").read_text())
    folder = tmp_path / "unlabelled"
    shutil.copytree(teacher["images"], folder)
    shutil.copyfile(root / "images" / val["images"][1]["file_name"], folder / "holiday_photo.jpg")
    out = tmp_path / "pseudo.json"
    base = [str(teacher["config"]), str(teacher["ckpt"]), "--out", str(out), "--no-progress"]
    assert pseudo_cli.main(base + ["--input", str(folder)]) == 2
    line = one_line_error(capsys)
    assert f"1 of the 6 images of --input {folder} are validation images" in line
    assert f"holiday_photo.jpg is {val['images'][1]['file_name']}, the same content" in line and "--allow-val" in line

    assert pseudo_cli.main(base + ["--input", str(root / "val.json")]) == 2  # the validation json itself
    assert "4 of the 4 images" in (line := one_line_error(capsys)) and "the same file" in line
    assert not out.exists()

    assert pseudo_cli.main(base + ["--input", str(folder), "--allow-val"]) == 0
    assert len(json.loads(out.read_text())["images"]) == 6
