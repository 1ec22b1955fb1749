"""Checkpoints that survive a kill mid-save and load without unpickling arbitrary code."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segkit.errors import SegkitError


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write to a temp file in the same folder, fsync, then rename: the old file stays valid until then."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


EXPECTED = ("segkit expects a checkpoint saved by a segkit run (<work_dir>/checkpoints/*.pth): a dict with 'model' "
            "(the weights), 'config' and 'classes'")
_SHOWN_KEYS = 3  # weight names quoted in a mismatch message (the traceback under --debug has them all)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` on CPU, then a check that it is a segkit checkpoint.

    Every failure is one line saying what the file is and what segkit expects; never the advice to load it
    with ``weights_only=False`` (which would run arbitrary code from the file).
    """
    path = Path(path)
    if not path.is_file():
        raise SegkitError(f"checkpoint {path} does not exist; check the path (runs save to <work_dir>/checkpoints/)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises many types for files that are not checkpoints)
        raise SegkitError(f"checkpoint {path} cannot be loaded: {_what_file(path, err)}; {EXPECTED}") from err
    if isinstance(state, dict) and "model" in state:
        return state
    if isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SegkitError(f"checkpoint {path} is a plain state_dict ({len(state)} tensors), not a segkit checkpoint; "
                          "re-save it as torch.save({'model': state_dict}, path) and give the CONFIG it was trained "
                          "with before it")
    raise SegkitError(f"checkpoint {path} {_what_object(state)}; {EXPECTED}")


def _what_file(path: Path, err: Exception) -> str:
    """What a file torch.load refused looks like, without torch's advice to trust it."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if head.startswith(b"PK\x03\x04"):
        detail = str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else type(err).__name__
        if "weights_only" in str(err) and "Unsupported" in str(err):
            return "a PyTorch file holding objects other than tensors and plain data, which segkit never unpickles"
        return "a PyTorch (zip) file that is truncated or damaged" + (
            "" if "weights_only" in detail else f" ({detail[:120]})")
    if not head:
        return "an empty file"
    try:
        head.decode("utf-8")
        return "a text file, not a PyTorch checkpoint" if b"\0" not in head else "not a PyTorch checkpoint"
    except UnicodeDecodeError:
        return "not a PyTorch checkpoint (unrecognised binary content)"


def _what_object(state: Any) -> str:
    if isinstance(state, torch.Tensor):
        return f"holds a single tensor of shape {tuple(state.shape)}, not a checkpoint"
    if isinstance(state, dict):
        keys = ", ".join(repr(k) for k in list(state)[:5]) or "none"
        return f"is a dict without 'model' (keys: {keys})"
    return f"holds a {type(state).__name__}, not a checkpoint"


def load_weights(model: torch.nn.Module, weights: dict[str, Any], problem: str, advice: str) -> None:
    """``model.load_state_dict(weights)``; a mismatch is one line, ``problem (counts, first names); advice``,
    with the full lists in the chained error (``--debug``) instead of one line of thousands of characters."""
    try:
        model.load_state_dict(weights)
    except (KeyError, RuntimeError) as err:
        own = model.state_dict()
        problems = [
            ("missing", [k for k in own if k not in weights]),
            ("unexpected", [k for k in weights if k not in own]),
            ("of another shape", [k for k in own if k in weights and hasattr(weights[k], "shape")
                                  and tuple(own[k].shape) != tuple(weights[k].shape)]),
        ]
        parts = [f"{len(keys)} {what} (first: {', '.join(keys[:_SHOWN_KEYS])})" for what, keys in problems if keys]
        detail = "; ".join(parts) or type(err).__name__
        raise SegkitError(f"{problem} ({detail}; --debug lists them all); {advice}") from err


def restore_best(state: dict[str, Any], best: Path) -> bool:
    """Rewrite ``best`` from ``state`` (a last.pth being resumed) when that state is the best so far but
    ``best`` does not hold it; True when it was rewritten.

    ``CheckpointHook`` saves one state to last.pth, then to best.pth: a kill between the two leaves best.pth
    missing or one best behind, and a resumed run at its final epoch would never write it again.
    """
    if state["best"].get("iter") != state["iter"] or state["epoch_step"]:
        return False
    if best.is_file() and load_checkpoint(best).get("iter") == state["iter"]:
        return False
    save_checkpoint(state, best)
    return True


def evaluated_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The weights a run validated and chose best.pth by: the EMA average when the run kept one.

    Reads both EMA formats: the model's own state dict (``EMAHook`` now) and an ``AveragedModel``'s
    (``module.``-prefixed keys and ``n_averaged``, older checkpoints).
    """
    ema = state.get("hooks", {}).get("EMAHook")
    if ema is None:
        return state["model"]
    return {k.removeprefix("module."): v for k, v in ema["model"].items() if k != "n_averaged"}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG a run draws from, in types that ``weights_only`` loading accepts."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
