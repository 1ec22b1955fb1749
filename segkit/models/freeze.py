"""Transfer-learning knobs: freeze the encoder (or its first N stages) and hold BatchNorm statistics.

A frozen parameter has ``requires_grad=False``. Frozen BatchNorm layers are named in the wrapper's
``frozen_norms`` and put back in eval mode by ``PaddedSegmenter.train()``, so their running statistics
keep the loaded values however often the trainer calls ``model.train()``. Freezing a stage holds its
BatchNorm layers too: with moving statistics its "frozen" features would still drift.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from segkit.errors import SegkitError
from segkit.models.parts import encoder_of, encoder_parameters, encoder_stages
from segkit.models.smp_models import PaddedSegmenter


def freeze_encoder(model: PaddedSegmenter, stages: bool | int) -> None:
    """``True``: the whole encoder; int N: its first N stages (``parts.encoder_stages``); 0/False: none."""
    if type(stages) is bool:
        frozen = encoder_parameters(model) if stages else []
    elif type(stages) is int and stages >= 0:
        available = encoder_stages(model)
        if stages > len(available):
            raise SegkitError(f"model.freeze_encoder={stages} but this encoder has {len(available)} stages; "
                              f"use 0..{len(available)} or True for the whole encoder")
        frozen = [p for stage in available[:stages] for p in stage]
    else:
        raise SegkitError(f"model.freeze_encoder={stages!r} must be True, False or a number of stages "
                          "(int >= 0)")
    for param in frozen:
        param.requires_grad_(False)
    frozen_ids = {id(p) for p in frozen}
    _hold_norms(model, lambda norm: any(id(p) in frozen_ids for p in norm.parameters()))


def freeze_batchnorm(model: PaddedSegmenter) -> None:
    """Every encoder BatchNorm: eval mode for good and no gradient for its affine parameters.

    Only the encoder's: its statistics come from pretraining, while the decoder's start from scratch and
    have to be learnt.
    """
    norms = [m for m in encoder_of(model).modules() if isinstance(m, _BatchNorm)]
    for norm in norms:
        for param in norm.parameters():
            param.requires_grad_(False)
    norm_ids = {id(n) for n in norms}
    _hold_norms(model, lambda norm: id(norm) in norm_ids)


def _hold_norms(model: PaddedSegmenter, chosen: Callable[[nn.Module], bool]) -> None:
    names = [name for name, module in model.named_modules()
             if isinstance(module, _BatchNorm) and chosen(module)]
    model.frozen_norms = sorted(set(model.frozen_norms) | set(names))
    model.train(model.training)
