"""What produced a run: a hash of its resolved config, the code's git state and the library versions.

``summary.json`` carries these so that two runs can be told apart (or found identical) without reading their
configs, and a number can be traced back to the commit that produced it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import segkit

# Keys that say where a run was written, not what it computed: left out of the hash.
_PLACEMENT_KEYS = ("work_dir",)
_LIBRARIES = ("torch", "torchvision", "segmentation-models-pytorch", "timm", "albumentations")


def config_hash(config: Mapping[str, Any]) -> str:
    """12 hex digits of SHA-256 over the canonical JSON of the resolved config (``work_dir`` excluded)."""
    kept = {k: v for k, v in config.items() if k not in _PLACEMENT_KEYS}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def git_state(path: str | Path | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout holding ``path`` (default: segkit's code), else None."""
    where = Path(path) if path is not None else Path(segkit.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def versions() -> dict[str, str | None]:
    """segkit and the libraries that decide what a model computes (None = not installed)."""
    found: dict[str, str | None] = {"segkit": segkit.__version__}
    for name in _LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    found["torch"] = torch.__version__
    return found


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """All parameters and the trainable ones (frozen encoders make them differ)."""
    params = list(model.parameters())
    return {"parameters": sum(p.numel() for p in params),
            "trainable_parameters": sum(p.numel() for p in params if p.requires_grad)}
