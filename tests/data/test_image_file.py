"""Decoding image files: truncated JPEGs are bad images (libjpeg only warns), 16-bit images with little range noted."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from segkit.data.image_file import ImageDecodeError, read_rgb


def textured(height: int = 97, width: int = 131) -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur((rng.random((height, width, 3)) * 255).astype(np.uint8), (5, 5), 2)


def jpeg_with_thumbnail(image: np.ndarray) -> bytes:
    """A JPEG whose EXIF holds a thumbnail: a whole JPEG (with its own end marker) inside the header."""
    picture = Image.fromarray(image)
    thumb = io.BytesIO()
    picture.resize((16, 12)).save(thumb, "JPEG")
    exif = picture.getexif()
    exif[0x010F] = "segkit"
    out = io.BytesIO()
    picture.save(out, "JPEG", exif=exif.tobytes() + thumb.getvalue())
    return out.getvalue()


def test_a_whole_jpeg_decodes_as_opencv_decodes_it(tmp_path):
    path = tmp_path / "a.jpg"
    assert cv2.imwrite(str(path), textured())
    rgb, note = read_rgb(path)
    np.testing.assert_array_equal(rgb, cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    assert note is None


@pytest.mark.parametrize("thumbnail", [False, True])
@pytest.mark.parametrize("keep", [0.6, 0.9, -2])
def test_a_truncated_jpeg_is_refused_although_opencv_decodes_it(tmp_path, thumbnail, keep):
    image = textured()
    data = jpeg_with_thumbnail(image) if thumbnail else cv2.imencode(".jpg", image)[1].tobytes()
    whole, cut = tmp_path / "whole.jpg", tmp_path / "cut.jpg"
    whole.write_bytes(data)
    cut.write_bytes(data[:int(len(data) * keep)] if keep > 0 else data[:keep])
    assert read_rgb(whole)[0].shape == (97, 131, 3)
    if not thumbnail:
        assert cv2.imread(str(cut)) is not None  # what the readers used to accept: grey rows, no error
    with pytest.raises(ImageDecodeError, match="truncated JPEG"):
        read_rgb(cut)


def test_sixteen_bit_images_decode_like_opencv_and_a_low_range_is_noted(tmp_path):
    rng = np.random.default_rng(1)
    full, twelve = tmp_path / "full.png", tmp_path / "twelve.png"
    assert cv2.imwrite(str(full), (rng.random((9, 7, 3)) * 65535).astype(np.uint16))
    assert cv2.imwrite(str(twelve), (rng.random((9, 7, 3)) * 4095).astype(np.uint16))
    for path in (full, twelve):
        rgb, _ = read_rgb(path)
        np.testing.assert_array_equal(rgb, cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    assert read_rgb(full)[1] is None
    note = read_rgb(twelve)[1]
    peak = int(cv2.imread(str(twelve), cv2.IMREAD_UNCHANGED).max())
    assert peak < 4096 and "16-bit" in note and "1/16" in note and f"largest value is {peak}" in note


def test_non_images_and_missing_files_are_decode_errors(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        read_rgb(tmp_path / "x.png")
    with pytest.raises(ImageDecodeError, match="cannot read"):
        read_rgb(tmp_path / "missing.png")
