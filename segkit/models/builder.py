"""Config -> model, with the class count checked against the dataset and the transfer-learning knobs applied.

``pretrained``, ``freeze_encoder`` and ``freeze_bn`` work the same for every architecture, so they are taken
out of the config here instead of being repeated in each registered factory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

import segkit.models  # noqa: F401  (registers the architectures)
from segkit.errors import SegkitError
from segkit.models.freeze import freeze_batchnorm, freeze_encoder
from segkit.models.pretrained import load_pretrained
from segkit.registry import MODELS

TRANSFER_KEYS = ("pretrained", "freeze_encoder", "freeze_bn")


def build_model(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    """``model.num_classes`` may be left as None; if given it must match the dataset's class count.

    Then: ``pretrained="path.pth|.safetensors"`` loads local weights (whole model, segkit checkpoint or
    encoder only), ``freeze_encoder=True|N`` freezes the encoder or its first N stages, ``freeze_bn=True``
    holds the encoder's BatchNorm statistics and affine parameters.
    """
    declared = cfg.get("num_classes")
    if declared is not None and declared != num_classes:
        raise SegkitError(
            f"model.num_classes={declared} but the dataset has {num_classes} classes (Background included); "
            "set model.num_classes=None to take it from the data"
        )
    pretrained, stages, freeze_bn = (cfg.get(key) for key in TRANSFER_KEYS)
    if freeze_bn not in (None, False, True):
        raise SegkitError(f"model.freeze_bn={freeze_bn!r} must be True or False")
    kwargs = {k: v for k, v in cfg.items() if k not in ("num_classes", *TRANSFER_KEYS)}
    model = MODELS.build(kwargs, where="model", num_classes=num_classes)
    if pretrained:
        load_pretrained(model, pretrained)
    if stages:
        freeze_encoder(model, stages)
    if freeze_bn:
        freeze_batchnorm(model)
    return model
