"""Checkpoints that survive a kill mid-save and load without unpickling arbitrary code."""

from __future__ import annotations

import os
import pickle
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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` on CPU, with one-line errors for missing or broken files."""
    path = Path(path)
    if not path.is_file():
        raise SegkitError(f"checkpoint {path} does not exist; check the path (runs save to <work_dir>/checkpoints/)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SegkitError(f"checkpoint {path} cannot be loaded ({first_line}); it is truncated or not a "
                          "segkit checkpoint") from err


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
