"""One image file -> RGB uint8, as every segkit reader decodes it (training, validation, prediction).

OpenCV decodes (EXIF rotation applied, 16-bit samples reduced to their high byte), but libjpeg only *warns*
about a JPEG cut short ("Premature end of JPEG file") and returns the missing rows as flat grey. So a JPEG
counts as whole only when an end-of-image marker follows its last scan: a check on the bytes already read
(the marker is normally the last two bytes), no second decode. A truncated PNG already fails in libpng.

A 16-bit PNG whose largest sample is under 1/16 of its range (12-bit sensor data, say) becomes nearly
black in 8 bits; the reader says so in a note the caller shows.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

_JPEG_START, _JPEG_END, _JPEG_SCAN = b"\xff\xd8", b"\xff\xd9", b"\xff\xda"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LOW_RANGE = 65536 // 16  # a 16-bit image whose samples all stay below this uses under 1/16 of its range


class ImageDecodeError(Exception):
    """Why a file is not a whole image (the caller adds which file and what to do)."""


def read_rgb(path: str | Path) -> tuple[np.ndarray, str | None]:
    """``(uint8 (H, W, 3) RGB, note or None)``; raises :class:`ImageDecodeError` for unreadable or truncated files."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ImageDecodeError(f"cannot read the file ({err.strerror})") from err
    if data.startswith(_JPEG_START) and not _jpeg_is_complete(data):
        raise ImageDecodeError("a truncated JPEG (no end-of-image marker after its last scan; libjpeg would fill "
                               "the missing rows with grey)")
    sixteen_bit = _png_bit_depth(data) == 16
    flags = cv2.IMREAD_COLOR | (cv2.IMREAD_ANYDEPTH if sixteen_bit else 0)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if bgr is None:
        raise ImageDecodeError("OpenCV cannot decode it (not an image, or a corrupt one)")
    note = None
    if bgr.dtype == np.uint16:
        peak = int(bgr.max())
        if peak < LOW_RANGE:
            note = (f"a 16-bit image whose largest value is {peak} (under 1/16 of 65535): it decodes to 8 bits as "
                    "nearly black; rescale it to the full 16-bit range (or save it as 8 bits)")
        bgr = (bgr >> 8).astype(np.uint8)  # what OpenCV's own 8-bit decode of a 16-bit PNG gives
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), note


def _jpeg_is_complete(data: bytes) -> bool:
    """An end-of-image marker with no scan after it (an EXIF thumbnail's marker does not count: the main
    image's scan follows it)."""
    end = data.rfind(_JPEG_END)
    return end >= 0 and data.find(_JPEG_SCAN, end) < 0


def _png_bit_depth(data: bytes) -> int | None:
    """The IHDR bit depth of a PNG, without decoding it."""
    if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) > 24:
        return data[24]
    return None
