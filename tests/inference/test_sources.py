"""Inputs: folders (sorted, optionally recursive), COCO json with only ``images``, single images, bad files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from segkit.errors import SegkitError
from segkit.inference.checkpoints import inference_network
from segkit.inference.sources import open_source


def write_image(path, height=6, width=5, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, 3), value, np.uint8))


def test_folder_is_sorted_named_by_relative_path_and_hidden_files_are_ignored(tmp_path):
    for name in ("b.png", "a.jpg", "sub/c.png", ".hidden.png", ".cache/d.png"):
        write_image(tmp_path / name)
    flat = open_source(tmp_path)
    assert [img.name for img in flat.images] == ["a.jpg", "b.png"]
    deep = open_source(tmp_path, recursive=True)
    assert [img.name for img in deep.images] == ["a.jpg", "b.png", "sub/c.png"]
    assert [img.image_id for img in deep.images] == [1, 2, 3]
    decoded = list(deep.decoded())
    assert [info.name for info, _ in decoded] == ["a.jpg", "b.png", "sub/c.png"]
    assert decoded[0][1].shape == (3, 6, 5)


def test_coco_json_needs_only_images(tmp_path):
    write_image(tmp_path / "images" / "x" / "1.png", 7, 9, value=200)
    ann = tmp_path / "test.json"
    ann.write_text(json.dumps({"images": [{"id": 40, "file_name": "x/1.png"}]}))
    source = open_source(ann, img_dir=tmp_path / "images")
    assert source.categories is None
    [(info, image)] = list(source.decoded())
    assert (info.name, info.image_id, info.height, info.width) == ("x/1.png", 40, 7, 9)
    assert image.shape == (3, 7, 9) and int(image.max()) == 200
    with pytest.raises(SegkitError, match="--img-dir"):
        open_source(ann)  # the images are not next to the json


def test_coco_size_mismatch_is_a_bad_image(tmp_path):
    write_image(tmp_path / "1.png", 7, 9)
    write_image(tmp_path / "2.png", 7, 9)
    ann = tmp_path / "test.json"
    ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "1.png", "width": 9, "height": 7},
                                          {"id": 2, "file_name": "2.png", "width": 8, "height": 7}]}))
    with pytest.raises(SegkitError, match="json says 8x7"):
        open_source(ann)
    source = open_source(ann, on_bad="skip")
    assert [img.name for img in source.images] == ["1.png"] and source.skipped[0]["name"] == "2.png"


@pytest.mark.parametrize(("content", "message"), [
    ({"images": []}, "non-empty 'images'"),
    ({"annotations": []}, "non-empty 'images'"),
    ({"images": [{"id": 1}]}, "file_name"),
    ({"images": [{"id": "one", "file_name": "1.png"}]}, "non-integer id"),
])
def test_malformed_coco_inputs(tmp_path, content, message):
    ann = tmp_path / "test.json"
    ann.write_text(json.dumps(content))
    with pytest.raises(SegkitError, match=message):
        open_source(ann)


def test_single_image_and_missing_inputs(tmp_path):
    write_image(tmp_path / "one.jpg")
    assert [img.name for img in open_source(tmp_path / "one.jpg").images] == ["one.jpg"]
    with pytest.raises(SegkitError, match="no such file"):
        open_source(tmp_path / "two.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"\x00" * 10)
    with pytest.raises(SegkitError, match="junk.jpg: not a readable image"):
        open_source(tmp_path / "junk.jpg")
    with pytest.raises(SegkitError, match="no readable image"):
        open_source(tmp_path / "junk.jpg", on_bad="skip")
    with pytest.raises(SegkitError, match="--on-bad-image"):
        open_source(tmp_path, on_bad="ignore")


def test_networks_for_checkpoints_never_download_or_load_initial_weights():
    model = inference_network({"type": "Unet", "encoder_name": "resnet18", "encoder_weights": "imagenet",
                               "encoder_depth": 3, "decoder_channels": (8, 8, 8), "pretrained": "/no/such.pth"}, 3)
    assert model.multiple == 8


def test_a_truncated_jpeg_stops_the_run_or_is_skipped(tmp_path):
    rng = np.random.default_rng(0)
    data = cv2.imencode(".jpg", rng.integers(0, 255, (40, 30, 3), np.uint8))[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) // 2])
    write_image(tmp_path / "fine.png")
    with pytest.raises(SegkitError, match=r"cut.jpg: a truncated JPEG.*--on-bad-image skip"):
        list(open_source(tmp_path).decoded())
    source = open_source(tmp_path, on_bad="skip")
    assert [info.name for info, _ in source.decoded()] == ["fine.png"]
    assert [(s["name"], s["reason"][:16]) for s in source.skipped] == [("cut.jpg", "a truncated JPEG")]


def test_a_16_bit_image_using_little_of_its_range_is_warned_about_once(tmp_path, capsys):
    for name in ("a.png", "b.png"):
        assert cv2.imwrite(str(tmp_path / name), np.full((4, 5, 3), 4000, np.uint16))
    assert cv2.imwrite(str(tmp_path / "c.png"), np.full((4, 5, 3), 60000, np.uint16))
    source = open_source(tmp_path)
    assert len(list(source.decoded())) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a.png" in err[0] and "largest value is 4000" in err[0]
    assert source.noted == 2


def test_inputs_whose_outputs_would_share_a_name_are_refused_naming_both(tmp_path):
    from segkit.inference.writers import check_output_names

    for name in ("img.jpg", "img.png", "sub/img.png", "other.png"):
        write_image(tmp_path / name)
    check_output_names(open_source(tmp_path, recursive=True).images[2:])  # sub/img.png and other.png are fine
    with pytest.raises(SegkitError, match=r"img.jpg and .*img.png would both be written as img.png"):
        check_output_names(open_source(tmp_path).images)
