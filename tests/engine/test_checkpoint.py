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
    save_checkpoint({"model": {}, "epoch": 1}, path)

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


def _files(folder):
    """Files that are not segkit checkpoints, each with what its one-line error must say."""
    import argparse

    (folder / "text.pth").write_text("hello\nthis is not a checkpoint\n")
    torch.save(torch.zeros(3, 4), folder / "tensor.pth")
    (folder / "random.pth").write_bytes(np.random.default_rng(0).bytes(5000))
    torch.save({"conv.weight": torch.zeros(2)}, folder / "state_dict.pth")
    torch.save({"model": {}, "args": argparse.Namespace(a=1)}, folder / "pickled.pth")
    whole = folder / "whole.pth"
    torch.save({"model": {"w": torch.zeros(100)}}, whole)
    (folder / "cut.pth").write_bytes(whole.read_bytes()[:300])
    return {"text.pth": "a text file", "tensor.pth": "a single tensor of shape (3, 4)",
            "random.pth": "not a PyTorch checkpoint", "state_dict.pth": "a plain state_dict (1 tensors)",
            "pickled.pth": "objects other than tensors", "cut.pth": "truncated or damaged"}


def test_files_that_are_not_checkpoints_are_one_line_each_saying_what_they_are(tmp_path):
    for name, what in _files(tmp_path).items():
        with pytest.raises(SegkitError) as caught:
            load_checkpoint(tmp_path / name)
        message = str(caught.value)
        assert what in message and name in message and "\n" not in message, message
        assert "weights_only" not in message and ("'model'" in message), message


def test_a_weight_mismatch_is_counted_and_capped():
    from segkit.engine.checkpoint import load_weights

    model = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(200)])
    weights = {"extra": torch.zeros(1), "0.weight": torch.zeros(3, 3)}
    with pytest.raises(SegkitError) as caught:
        load_weights(model, weights, "ckpt.pth: weights do not fit", "use its config")
    message = str(caught.value)
    assert message.startswith("ckpt.pth: weights do not fit (399 missing (first: 0.bias, 1.weight, 1.bias); "
                              "1 unexpected (first: extra); 1 of another shape (first: 0.weight)")
    assert message.endswith("use its config") and len(message) < 250
    assert "199.bias" in str(caught.value.__cause__)  # the full list, shown by --debug's traceback
