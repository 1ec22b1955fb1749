"""Checkpoints -> ensemble members: each network built from the config stored with its weights.

Which config decides what (docs/inference.md, "Which config wins"):

- the **network** (``model`` section) and its input normalisation (``data.mean``/``data.std``) come from the
  config stored in each checkpoint, so checkpoints of different architectures ensemble and no weights meet
  a network they do not fit; a checkpoint without a stored config uses the run config's;
- **everything else** (``test.*``, ``train.amp``, ``train.device``, ``data.*`` paths, classes, workers) comes
  from the run config: CONFIG with ``--set`` when given, else the first checkpoint's stored config.

All checkpoints must have the same class list, and it must match the classes the run expects (the
evaluated dataset's, the input's COCO categories, ``model.num_classes``); both lists are named when not.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segkit.config import Config, config_from_dict
from segkit.engine.checkpoint import evaluated_weights, load_checkpoint, load_weights
from segkit.engine.dist import resolve_device
from segkit.errors import SegkitError
from segkit.inference.onnx_member import onnx_member, read_onnx
from segkit.inference.predictor import Member, Predictor
from segkit.inference.tta import TTASpec
from segkit.inference.window import SlidingWindow, window_from_config
from segkit.models.builder import build_model
from segkit.registry import MODELS


@dataclass
class Ensemble:
    """Loaded members (eval mode, CPU), their common class list and the run config."""

    members: list[Member]
    classes: list[str]
    config: Config


def run_config(checkpoint: str | Path, state: Mapping[str, Any], overrides: Sequence[str] = ()) -> Config:
    """The config stored in ``checkpoint`` (checked against today's schema), with ``--set`` items."""
    stored = state.get("config")
    if not isinstance(stored, Mapping):
        raise SegkitError(f"{checkpoint} holds no config; pass the CONFIG it was trained with before the checkpoints")
    return config_from_dict(stored, f"{checkpoint} (stored config)", overrides)


def inference_network(model_cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    """The architecture of ``model_cfg`` with nothing loaded into it: the checkpoint provides every weight.

    ``pretrained`` is dropped and ``encoder_weights`` set to None (where the model takes it), so predicting
    never downloads ImageNet weights or needs the files a run was initialised from.
    """
    cfg = {k: v for k, v in model_cfg.items() if k not in ("pretrained", "freeze_encoder", "freeze_bn")}
    factory = MODELS.get(cfg.get("type", ""), where="model.type")
    if "encoder_weights" in inspect.signature(factory).parameters:
        cfg["encoder_weights"] = None
    return build_model(cfg, num_classes=num_classes)


@dataclass
class Checkpoints:
    """Loaded checkpoint states and the run config, before any network is built (cheap to refuse)."""

    states: list[tuple[Path, dict[str, Any]]]
    config: Config
    classes: list[str] | None  # the common class list; None when no checkpoint stores one


def read_checkpoints(checkpoints: Sequence[str | Path], cfg: Config | None = None,
                     overrides: Sequence[str] = ()) -> Checkpoints:
    """Load every checkpoint and check they share one class list that fits ``model.num_classes``.

    ``cfg`` is the run config; None takes the first checkpoint's stored config with ``overrides``.
    """
    if not checkpoints:
        raise SegkitError("give at least one checkpoint")
    states = [(Path(path), _onnx_state(path) if Path(path).suffix == ".onnx" else load_checkpoint(path))
              for path in checkpoints]
    if cfg is None:
        cfg = run_config(*states[0], overrides)
    stored = [(path, list(state["classes"])) for path, state in states if state.get("classes") is not None]
    classes = stored[0][1] if stored else None
    for path, own in stored:
        if own != classes:
            raise SegkitError(f"{path}: classes {own} differ from {stored[0][0]}'s {classes}; every checkpoint "
                              "of an ensemble needs the same class list")
    declared = cfg.model.get("num_classes")
    if classes is not None and declared is not None and declared != len(classes):
        raise SegkitError(f"{stored[0][0]}: a checkpoint for {len(classes)} classes {classes}, but "
                          f"{cfg.source or 'the config'} sets model.num_classes={declared}; use the matching config")
    return Checkpoints(states, cfg, classes)


def build_ensemble(loaded: Checkpoints, weights: Sequence[float] | None = None,
                   expected_classes: Sequence[str] | None = None, expected_from: str = "") -> Ensemble:
    """Networks with their weights; ``expected_classes`` (named by ``expected_from`` in errors) is the class
    list the run needs, e.g. the evaluated dataset's or the input's categories."""
    first = loaded.states[0][0]
    if weights is not None and len(weights) != len(loaded.states):
        raise SegkitError(f"--weights has {len(weights)} value(s) for {len(loaded.states)} checkpoint(s); give one "
                          "weight per checkpoint")
    classes = loaded.classes if loaded.classes is not None else expected_classes
    if classes is None:
        raise SegkitError(f"{first} holds no class list; evaluate it with tools/test.py and its config, or "
                          "re-save it from a segkit run")
    classes = list(classes)
    _check_expected(first, classes, expected_classes, expected_from)
    members = []
    for i, (path, state) in enumerate(loaded.states):
        weight = 1.0 if weights is None else float(weights[i])
        if "onnx" in state:
            members.append(onnx_member(*state["onnx"], weight=weight, name=str(path)))
            continue
        own = run_config(path, state) if isinstance(state.get("config"), Mapping) else loaded.config
        model = inference_network(own.model, len(classes))
        load_weights(model, evaluated_weights(state), f"{path}: weights do not fit model.type={own.model.type!r}",
                     "use the config the checkpoint was trained with")
        members.append(Member(model.eval(), own.data.mean, own.data.std,
                              weight=weight, name=str(path)))
    return Ensemble(members, classes, loaded.config)


def load_ensemble(checkpoints: Sequence[str | Path], cfg: Config | None = None, weights: Sequence[float] | None = None,
                  expected_classes: Sequence[str] | None = None, expected_from: str = "",
                  overrides: Sequence[str] = ()) -> Ensemble:
    """:func:`read_checkpoints` then :func:`build_ensemble`."""
    return build_ensemble(read_checkpoints(checkpoints, cfg, overrides), weights, expected_classes, expected_from)


def _onnx_state(path: str | Path) -> dict[str, Any]:
    """An exported model as a checkpoint-like state: its metadata's classes and config, and the session."""
    session, info = read_onnx(path)
    return {"classes": info.classes, "config": info.config, "onnx": (session, info)}


def _check_expected(checkpoint: str | Path, classes: list[str], expected: Sequence[str] | None,
                    expected_from: str) -> None:
    if expected is not None and list(expected) != classes:
        raise SegkitError(f"{checkpoint}: trained on classes {classes} but {expected_from} has {list(expected)}; "
                          "use the matching config/data (or data.classes)")


def load_predictor(checkpoints: Sequence[str | Path], cfg: Config | None = None, *, tta: TTASpec | None = None,
                   window: SlidingWindow | None = None, weights: Sequence[float] | None = None,
                   device: str | torch.device | None = None, batch_size: int | None = None,
                   expected_classes: Sequence[str] | None = None, expected_from: str = "") -> Predictor:
    """A :class:`Predictor` over ``checkpoints`` in one call (the API pseudo-labelling and k-fold use).

    ``window`` defaults to the run config's ``test.mode``; ``device`` to its ``train.device``; AMP follows
    its ``train.amp``.
    """
    ensemble = load_ensemble(checkpoints, cfg, weights, expected_classes, expected_from)
    return predictor_for(ensemble, tta=tta, window=window, device=device, batch_size=batch_size)


def predictor_for(ensemble: Ensemble, *, tta: TTASpec | None = None, window: SlidingWindow | None = None,
                  device: str | torch.device | None = None, batch_size: int | None = None,
                  resize: tuple[int, int] | None = None) -> Predictor:
    """``window`` and ``resize`` default to the run config's ``test.mode`` and ``test.resize``."""
    cfg = ensemble.config
    return Predictor(ensemble.members, classes=ensemble.classes, tta=tta,
                     window=window if window is not None else window_from_config(cfg.test),
                     device=device if device is not None else resolve_device(cfg.train.device),
                     amp=cfg.train.amp, batch_size=batch_size,
                     resize=resize if resize is not None else cfg.test.get("resize"))
