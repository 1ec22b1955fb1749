"""onnx and onnxruntime are the ``deploy`` extra: imported here, so a missing one is one line naming it."""

from __future__ import annotations

import importlib
from types import ModuleType

from segkit.errors import SegkitError


def require(module: str) -> ModuleType:
    """``onnx``, ``onnxruntime`` or one of their submodules, or a SegkitError saying which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise SegkitError(f"{module} is not installed; install segkit's deploy extra: "
                          "pip install 'segkit[deploy]' (onnx, onnxruntime)") from err


def providers() -> list[str]:
    """CUDA when this onnxruntime has it, else the CPU provider."""
    available = require("onnxruntime").get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
