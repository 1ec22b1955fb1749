"""Reading a COCO json with one-line errors (file:line:col for syntax errors) instead of tracebacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from segkit.errors import SegkitError


def is_int(value: Any) -> bool:
    """An integer id, size or index (NumPy ints too); ``True``/``False`` are ints to Python but never valid."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def read_json_object(path: str | Path) -> dict[str, Any]:
    """The top-level JSON object of ``path``; anything else (missing, unreadable, invalid, a list) is an error."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError as err:
        raise SegkitError(f"{path}: annotation file not found") from err
    except OSError as err:
        raise SegkitError(f"{path}: cannot read the annotation file ({err.strerror})") from err
    except json.JSONDecodeError as err:
        raise SegkitError(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from err
    except UnicodeDecodeError as err:
        raise SegkitError(f"{path}: not UTF-8 text ({err.reason}); expected a COCO json") from err
    if not isinstance(data, dict):
        raise SegkitError(f"{path}: top level is a {type(data).__name__}; expected a COCO json object")
    return data
