"""Prediction of unlabelled images: ``Predictor`` (TTA, ensembles, sliding windows), inputs and outputs.

The names below are imported on first use, so ``import segkit.inference.tta`` (what the CLIs' option
parsing needs) does not load the model zoo.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Predictor": "predictor", "Prediction": "predictor", "Member": "predictor",
    "TTASpec": "tta", "SlidingWindow": "window",
    "load_predictor": "checkpoints", "load_ensemble": "checkpoints", "predictor_for": "checkpoints",
    "open_source": "sources",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'segkit.inference' has no attribute {name!r}")
    return getattr(importlib.import_module(f"segkit.inference.{_EXPORTS[name]}"), name)
