"""Opening an ONNX file: an onnxruntime session and segkit's metadata, or one line saying what is wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segkit.deploy.runtime import providers, require
from segkit.errors import SegkitError


def open_session(path: str | Path) -> Any:
    """An ``onnxruntime.InferenceSession`` (CUDA provider when present, else CPU)."""
    ort = require("onnxruntime")
    path = Path(path)
    if not path.is_file():
        raise SegkitError(f"{path} does not exist; export one with tools/export.py CKPT --out {path}")
    try:
        return ort.InferenceSession(str(path), providers=providers())
    except Exception as err:  # onnxruntime raises its own (pybind) exception types
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SegkitError(f"{path} is not a loadable ONNX model ({first[:200]}); re-export it") from err


@dataclass
class OnnxInfo:
    """What segkit's exporter wrote into the file: class names, normalisation, the stride multiple."""

    classes: list[str]
    mean: list[float]
    std: list[float]
    multiple: int
    config: dict[str, Any]
    metadata: dict[str, str]


def read_info(session: Any, path: str | Path) -> OnnxInfo:
    meta = dict(session.get_modelmeta().custom_metadata_map)
    try:
        return OnnxInfo(json.loads(meta["classes"]), json.loads(meta["mean"]), json.loads(meta["std"]),
                        int(meta["stride_multiple"]), json.loads(meta["config"]), meta)
    except (KeyError, ValueError) as err:
        raise SegkitError(f"{path}: no segkit metadata ({err}); export it with tools/export.py") from err
