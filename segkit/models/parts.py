"""Which parameters are the encoder, which the decoder, and the encoder's stages from the input on.

The optimizer gives the encoder its own learning-rate multiplier through these, and ``freeze_encoder=N``
freezes the first N stages, so they work on every built model: smp networks (``net.encoder``) and HRNet
(``net.encoder`` is the timm backbone), through ``PaddedSegmenter`` and DDP.
"""

from __future__ import annotations

import torch
from torch import nn

from segkit.errors import SegkitError
from segkit.models.unused import reached_parameters


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside DDP/DataParallel and ``PaddedSegmenter``."""
    if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
        model = model.module
    return getattr(model, "net", model)


def encoder_of(model: nn.Module) -> nn.Module:
    encoder = getattr(unwrap(model), "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise SegkitError(f"model {type(unwrap(model)).__name__} has no .encoder; encoder learning rates, "
                          "freezing and encoder-only weights need one")
    return encoder


def encoder_parameters(model: nn.Module) -> list[nn.Parameter]:
    """All encoder parameters, frozen ones included (they get no gradient, so optimizers skip them)."""
    return list(encoder_of(model).parameters())


def decoder_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter that is not the encoder's: decoder, heads, classifier."""
    encoder_ids = {id(p) for p in encoder_parameters(model)}
    return [p for p in model.parameters() if id(p) not in encoder_ids]


def encoder_stages(model: nn.Module) -> list[list[nn.Parameter]]:
    """The encoder's parameters grouped by stage, from the input.

    A network may define ``encoder_stages()`` (HRNet does: its branches run in parallel). Otherwise a stage is
    what an smp encoder adds between two of the feature maps it returns: the parameters the autograd graph of
    feature i reaches that no earlier feature reaches. That works for any smp or timm encoder, dilated ones
    included, without a per-family table: ResNet/EfficientNet give 5 stages (stem, strides 4..32), Mix
    Transformer and ConvNeXt 4, a ViT under DPT one per block group it returns (4).
    """
    net = unwrap(model)
    if hasattr(net, "encoder_stages"):
        return net.encoder_stages()
    return _stages_by_feature(encoder_of(model))


def _stages_by_feature(encoder: nn.Module) -> list[list[nn.Parameter]]:
    params = list(encoder.parameters())
    size = 2 * max(32, getattr(encoder, "output_stride", 32))
    was_training, grad_flags = encoder.training, [p.requires_grad for p in params]
    encoder.eval()  # keep BatchNorm statistics untouched by the probe
    try:
        for p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            features = encoder(torch.zeros(1, 3, size, size, device=params[0].device, dtype=params[0].dtype))
        if isinstance(features, tuple) and isinstance(features[0], list):  # a ViT's (features, prefix tokens)
            features = features[0]
        seen: set[int] = set()
        stages = []
        for feature in features:
            reached = reached_parameters(feature) - seen
            seen |= reached
            if reached:
                stages.append([p for p in params if id(p) in reached])
        return stages
    finally:
        encoder.train(was_training)
        for p, flag in zip(params, grad_flags):
            p.requires_grad_(flag)
