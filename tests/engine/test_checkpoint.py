import random

import numpy as np
import pytest
import torch

from segkit.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from segkit.errors import SegkitError


def test_round_trip_with_weights_only(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "epoch": 3, "best": {"mIoU": 0.5, "epoch": None},
             "rng": rng_state(), "config": {"data": {"mean": (1.0, 2.0)}}}
    save_checkpoint(state, tmp_path / "ck" / "last.pth")
    loaded = load_checkpoint(tmp_path / "ck" / "last.pth")
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["config"] == state["config"] and loaded["epoch"] == 3
    assert not list((tmp_path / "ck").glob(".*tmp"))


def test_rng_state_restores_every_generator():
    state = rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    save_checkpoint({"epoch": 1}, path)

    def broken_save(obj, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint({"epoch": 2}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(SegkitError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SegkitError, match="bad.pth cannot be loaded"):
        load_checkpoint(bad)
