"""``model.pretrained=PATH``: local weights into a built model, whatever part of it they cover.

Accepted: a whole-model state dict, a segkit checkpoint (``{"model": ...}``; ``state_dict`` as mmseg/timm
training checkpoints write it works too), or encoder-only weights (an smp encoder's or a timm backbone's state
dict, or an smp/HRNet network saved without segkit's wrapper). Rather than guessing from the file, every way
of placing its keys in the model (at the top, inside the wrapper, inside the encoder) is tried and the one
matching most tensors by name and shape wins. One log line reports what was loaded and what was not.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from segkit.errors import SegkitError
from segkit.models.parts import encoder_of

logger = logging.getLogger("segkit")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a .pth/.pt/.bin (``torch.load(weights_only=True)``) or .safetensors file, DDP's ``module.``
    prefix removed."""
    path = Path(path)
    if not path.is_file():
        raise SegkitError(f"model.pretrained={str(path)!r} does not exist; give the path of a .pth or "
                          ".safetensors file (relative paths start at the current directory)")
    try:
        state = load_file(path) if path.suffix == ".safetensors" else torch.load(
            path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, SafetensorError) as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SegkitError(f"model.pretrained={str(path)!r} cannot be read ({first_line}); it must be a "
                          "state dict or checkpoint saved with torch.save or safetensors") from err
    for key in ("model", "state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping):
        raise SegkitError(f"model.pretrained={str(path)!r} holds a {type(state).__name__}, not a state dict")
    return {_strip(key, "module."): value for key, value in state.items() if isinstance(value, torch.Tensor)}


def load_pretrained(model: nn.Module, path: str | Path) -> None:
    """Load the tensors of ``path`` that fit ``model``; SegkitError when none does."""
    source = read_state_dict(path)
    target = model.state_dict()
    prefix = max(_placements(model), key=lambda p: len(_matching(source, target, p)))
    matched = _matching(source, target, prefix)
    if not matched:
        raise SegkitError(
            f"model.pretrained={str(path)!r}: none of its {len(source)} tensors fits this model (its keys "
            f"look like {_sample(source)}; the model's like {_sample(target)}); was it saved from another "
            "architecture?"
        )
    model.load_state_dict(matched, strict=False)
    scope = [key for key in target if key.startswith(prefix)]
    missing = [key for key in scope if key not in matched]
    names = _names_in(target, prefix)
    unexpected = [key for key in source if names(key) is None]
    mismatched = [key for key in source if names(key) is not None and names(key) not in matched]
    part = {"": "model", "net.": "network"}.get(prefix, f"encoder ({prefix.rstrip('.')})")
    logger.info("model.pretrained=%s: loaded %d/%d %s tensors; missing %s; unexpected %s; "
                "shape-mismatched %s", path, len(matched), len(scope), part, _count(missing),
                _count(unexpected), _count(mismatched))


def _placements(model: nn.Module) -> list[str]:
    """Key prefixes from the top of the model down to its encoder, e.g. ``["", "net.", "net.encoder."]``, and
    to the timm model inside an smp ``tu-`` or ViT encoder (``net.encoder.model.``): a timm checkpoint's keys
    start there."""
    encoder = encoder_of(model)
    path = next(name for name, module in model.named_modules() if module is encoder)
    parts = path.split(".") if path else []
    if isinstance(getattr(encoder, "model", None), nn.Module):
        parts.append("model")
    return ["".join(f"{p}." for p in parts[:depth]) for depth in range(len(parts) + 1)]


def _plain(key: str) -> str:
    """timm's ``features_only`` networks flatten module paths (``stem.0`` becomes ``stem_0``): compare keys
    with both separators the same."""
    return key.replace("_", ".")


def _names_in(target: Mapping[str, torch.Tensor], prefix: str) -> Callable[[str], str | None]:
    """source key -> the model's key it names under ``prefix`` (exactly, or up to flattened paths), or None."""
    by_plain = {_plain(key[len(prefix):]): key for key in target if key.startswith(prefix)}

    def name(key: str) -> str | None:
        return prefix + key if prefix + key in target else by_plain.get(_plain(key))

    return name


def _matching(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
              prefix: str) -> dict[str, torch.Tensor]:
    names = _names_in(target, prefix)
    return {names(key): value for key, value in source.items()
            if names(key) is not None and target[names(key)].shape == value.shape}


def _sample(keys: Iterable[str], limit: int = 3) -> str:
    keys = list(keys)
    more = f", ... +{len(keys) - limit}" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _count(keys: list[str]) -> str:
    return f"{len(keys)} ({_sample(keys)})" if keys else "0"


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key
