"""int8 ONNX by onnxruntime's static quantisation (QDQ, per-channel weights), calibrated on training images.

Activation ranges come from ``N`` images of the training split (validation pipeline, no augmentation),
normalised as the model expects. The int8 file is written under a temp name and renamed only when
calibration ran and the quantised model gives finite logits on a calibration image.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segkit.config import config_from_dict
from segkit.deploy.onnx_export import INPUT
from segkit.deploy.onnx_session import open_session
from segkit.deploy.runtime import require
from segkit.errors import SegkitError


def calibration_images(config: Mapping[str, Any], count: int) -> list[np.ndarray]:
    """The first ``count`` training images (all of them when the split is smaller) as normalised float32
    ``(1, 3, H, W)`` arrays."""
    from segkit.data.loader import build_dataset

    if count < 1:
        raise SegkitError(f"--calib {count}: give a positive number of calibration images")
    cfg = config_from_dict(config, "the exported model's config")
    cfg.data.train.pipeline = cfg.data.val.pipeline
    cfg.data.train.copy_paste = None
    dataset = build_dataset(cfg, "train")
    if len(dataset) < count:
        print(f"--calib {count}: the training split ({cfg.data.root}) has {len(dataset)} images; calibrating on all")
        count = len(dataset)
    mean = np.asarray(cfg.data.mean, np.float32)[:, None, None]
    std = np.asarray(cfg.data.std, np.float32)[:, None, None]
    images = []
    for i in range(count):
        image = np.asarray(dataset[i]["image"], np.float32)
        chw = image if image.shape[0] == 3 else image.transpose(2, 0, 1)
        images.append(((chw - mean) / std)[None])
    return images


def quantize_int8(model: str | Path, images: Sequence[np.ndarray], out: str | Path | None = None) -> Path:
    """Write ``<model>.int8.onnx`` (or ``out``) calibrated on ``images`` (normalised ``(1, 3, H, W)``); a
    SegkitError, and nothing written, when calibration fails."""
    quantization = require("onnxruntime.quantization")
    model = Path(model)
    out = Path(out) if out is not None else model.with_suffix(".int8.onnx")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.items: Iterator[np.ndarray] = iter(images)

        def get_next(self) -> dict[str, np.ndarray] | None:
            image = next(self.items, None)
            return None if image is None else {INPUT: image}

    try:
        quantization.quantize_static(str(model), str(tmp), Reader(), quant_format=quantization.QuantFormat.QDQ,
                                     per_channel=True, activation_type=quantization.QuantType.QInt8,
                                     weight_type=quantization.QuantType.QInt8)
        logits = open_session(tmp).run(None, {INPUT: images[0]})[0]
        if not np.isfinite(logits).all():
            raise SegkitError(f"int8 calibration of {model} failed: non-finite logits; nothing written")
        os.replace(tmp, out)
    except SegkitError:
        raise
    except Exception as err:  # onnxruntime's quantiser raises assorted types
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SegkitError(f"int8 calibration of {model} failed ({first[:200]}); nothing written") from err
    finally:
        tmp.unlink(missing_ok=True)
    return out
