"""Config -> model, with the class count checked against the dataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

import segkit.models  # noqa: F401  (registers the architectures)
from segkit.errors import SegkitError
from segkit.registry import MODELS


def build_model(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    """``model.num_classes`` may be left as None; if given it must match the dataset's class count."""
    declared = cfg.get("num_classes")
    if declared is not None and declared != num_classes:
        raise SegkitError(
            f"model.num_classes={declared} but the dataset has {num_classes} classes (Background included); "
            "set model.num_classes=None to take it from the data"
        )
    kwargs = {k: v for k, v in cfg.items() if k != "num_classes"}
    return MODELS.build(kwargs, where="model", num_classes=num_classes)
