"""masks_to_coco: PNG class masks -> COCO json -> segkit's masks equal the PNGs exactly; bad inputs one line each."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segkit.cli.masks_to_coco import main as convert_main
from segkit.data.coco import CocoSegDataset
from tests.conftest import SHARED_DATA

NAMES = ["background", "road", "car", "person"]


def _write_set(root: Path, masks: dict[str, np.ndarray], names=NAMES) -> Path:
    for name, mask in masks.items():
        image = root / "images" / f"{name}.jpg"
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((*mask.shape, 3), 90, np.uint8)).save(image)
        target = root / "masks" / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask.astype(np.uint8)).save(target)
    (root / "names.txt").write_text("\n".join(names) + "\n")
    return root


def _synthetic(seed: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    mask[height // 2:] = 1  # road (stuff)
    for _ in range(4):  # cars and people as separate blobs (things), some touching
        y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
        mask[y:y + rng.integers(2, 8), x:x + rng.integers(2, 8)] = rng.integers(2, 4)
    mask[rng.random((height, width)) < 0.03] = 255  # ignore, scattered single pixels
    return mask


def _convert(root: Path, *extra: str) -> int:
    return convert_main(["--images", str(root / "images"), "--masks", str(root / "masks"),
                         "--classes", str(root / "names.txt"), "--out", str(root / "out.json"), *extra])


def _segkit_masks(root: Path, img_dir: Path) -> dict[str, np.ndarray]:
    dataset = CocoSegDataset(root, ann=str(root / "out.json"), img_dir=str(img_dir), cache=False)
    return {Path(dataset.images[i]["file_name"]).with_suffix("").as_posix(): dataset.mask(i)
            for i in range(len(dataset))}


def test_synthetic_masks_with_an_ignore_value_round_trip_exactly(tmp_path):
    masks = {"a": _synthetic(0, 40, 56), "sub/b": _synthetic(1, 33, 47), "c": _synthetic(2, 64, 64)}
    root = _write_set(tmp_path, masks)
    assert _convert(root, "--ignore", "255", "--things", "car,person") == 0
    coco = json.loads((root / "out.json").read_text())
    assert [c["name"] for c in coco["categories"]] == NAMES[1:]  # background is no category
    per_image = {}
    for ann in coco["annotations"]:
        assert isinstance(ann["segmentation"]["counts"], str)  # RLE, never polygons
        per_image.setdefault((ann["image_id"], ann["category_id"]), []).append(ann)
    assert all(len(v) == 1 for (_, cat), v in per_image.items() if cat == 1)  # stuff: one RLE per image
    assert any(len(v) > 1 for (_, cat), v in per_image.items() if cat in (2, 3))  # things: one per region
    got = _segkit_masks(root, root / "images")
    assert set(got) == set(masks)
    for name, mask in masks.items():
        np.testing.assert_array_equal(got[name], mask)  # values = segkit indices, 255 = data.ignore_index


def test_without_a_background_class_values_shift_by_one(tmp_path):
    mask = np.array([[0, 1], [1, 0]], np.uint8).repeat(8, 0).repeat(8, 1)
    root = _write_set(tmp_path, {"x": mask}, names=["sky", "road"])
    assert _convert(root) == 0
    np.testing.assert_array_equal(_segkit_masks(root, root / "images")["x"], mask + 1)


@pytest.mark.skipif(not (SHARED_DATA / "camvid" / "val.json").is_file(),
                    reason=f"needs the CamVid copy in {SHARED_DATA / 'camvid'} (not part of the repository)")
def test_camvid_masks_rendered_converted_back_and_rendered_again_are_equal(tmp_path):
    camvid = SHARED_DATA / "camvid"
    source = CocoSegDataset(camvid, ann="val.json", img_dir="images", cache=False)
    (tmp_path / "masks").mkdir()
    for i in range(len(source)):
        name = Path(source.images[i]["file_name"])
        target = tmp_path / "masks" / name.relative_to("val").with_suffix(".png")
        Image.fromarray(source.mask(i)).save(target)
    (tmp_path / "images").symlink_to(camvid / "images" / "val")
    (tmp_path / "names.txt").write_text("\n".join(source.classes) + "\n")  # Background first
    assert _convert(tmp_path) == 0
    again = _segkit_masks(tmp_path, tmp_path / "images")
    assert len(again) == len(source) == 101
    for i in range(len(source)):
        stem = Path(source.images[i]["file_name"]).relative_to("val").with_suffix("").as_posix()
        np.testing.assert_array_equal(again[stem], source.mask(i))


@pytest.mark.parametrize("break_it, message", [
    (lambda r: Image.fromarray(np.zeros((9, 9), np.uint8)).save(r / "masks" / "a.png"), "mask is 9x9 but its image"),
    (lambda r: Image.fromarray(np.full((16, 16), 7, np.uint8)).save(r / "masks" / "a.png"), "mask value 7 is not a class"),
    (lambda r: (r / "masks" / "a.png").unlink(), "no mask"),
    (lambda r: (r / "images" / "a.jpg").unlink(), "without an image"),
    (lambda r: Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(r / "masks" / "a.png"), "not a class-index mask"),
    (lambda r: (r / "names.txt").unlink(), "file not found"),
    (lambda r: (r / "names.txt").write_text("a\n\nb\n"), "line 2 is blank"),
    (lambda r: (r / "masks" / "a.png").write_bytes(b"not a png"), "not a readable PNG"),
])
def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, capsys, break_it, message):
    root = _write_set(tmp_path, {"a": np.zeros((16, 16), np.uint8), "b": np.ones((16, 16), np.uint8)})
    break_it(root)
    assert _convert(root) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (root / "out.json").exists()


@pytest.mark.parametrize("extra, message", [
    (["--ignore", "1"], "that value is the class 'road'"),
    (["--things", "bus"], "--things 'bus'"),
])
def test_bad_options_are_one_line(tmp_path, capsys, extra, message):
    root = _write_set(tmp_path, {"a": np.zeros((16, 16), np.uint8)})
    assert _convert(root, *extra) == 2
    assert message in capsys.readouterr().err


def test_an_output_in_a_missing_folder_is_refused_before_reading(tmp_path, capsys):
    root = _write_set(tmp_path, {"a": np.zeros((16, 16), np.uint8)})
    assert convert_main(["--images", str(root / "images"), "--masks", str(root / "masks"), "--classes",
                         str(root / "names.txt"), "--out", str(root / "nope" / "out.json")]) == 2
    assert "its folder does not exist" in capsys.readouterr().err
