"""Interrupted runs: SIGKILL mid-epoch then --resume ends bitwise equal to an uninterrupted run."""

import json
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from segkit.cli.train import main as train_main
from segkit.engine.checkpoint import load_checkpoint, save_checkpoint
from segkit.errors import SegkitError

# Three epochs of two steps, last.pth after every step; killed at step 6 before its save, so the run resumes
# from step 5, mid epoch 3 (the sampler skips what was done). DeepLabV3+ has dropout: the global RNG matters.
EXTRA = """train.update(checkpoint_iters=1, deterministic=True, ema=dict(decay=0.9))
model = dict(_delete_=True, type="DeepLabV3Plus", encoder_name="resnet18", encoder_weights=None, decoder_channels=16)
"""

KILLER = """
import os, signal, sys
from segkit.engine import hooks
original = hooks.CheckpointHook.after_step
def after_step(self, trainer):
    if trainer.iter == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
    original(self, trainer)
hooks.CheckpointHook.after_step = after_step
from segkit.cli.train import main
sys.exit(main(sys.argv[1:]))
"""


def run_killed(config, work_dir, kill_at: int, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "killer.py"
    script.write_text(textwrap.dedent(KILLER.format(kill_at=kill_at)))
    cmd = [sys.executable, str(script), str(config), "--work-dir", str(work_dir), "--no-progress", "--device", "cpu"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def metric_lines(work_dir):
    return [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]


def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tiny_config, tmp_path):
    config = tiny_config(epochs=3, extra=EXTRA)
    straight = tmp_path / "straight"
    assert train_main([str(config), "--work-dir", str(straight), "--no-progress", "--device", "cpu"]) == 0

    resumed = tmp_path / "resumed"
    killed = run_killed(config, resumed, kill_at=6, tmp_path=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (resumed / "summary.json").exists()
    interrupted = load_checkpoint(resumed / "checkpoints" / "last.pth")
    assert (interrupted["iter"], interrupted["epoch"], interrupted["epoch_step"]) == (5, 2, 1)
    assert train_main([str(config), "--work-dir", str(resumed), "--resume", "--no-progress", "--device", "cpu"]) == 0

    a = load_checkpoint(straight / "checkpoints" / "last.pth")
    b = load_checkpoint(resumed / "checkpoints" / "last.pth")
    assert (a["epoch"], a["iter"]) == (b["epoch"], b["iter"]) == (3, 6)
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    for name, tensor in a["hooks"]["EMAHook"]["model"].items():
        assert torch.equal(tensor, b["hooks"]["EMAHook"]["model"][name]), name
    assert a["optimizer"]["param_groups"][0]["lr"] == b["optimizer"]["param_groups"][0]["lr"]
    assert metric_lines(straight) == metric_lines(resumed)


def test_two_sources_sigkill_mid_epoch_then_resume_is_bitwise_identical(tiny_config, tmp_path):
    """Weighted sources (8 images at weight 1, 6 at 1.5: 17 draws, repeats included) resume exactly too."""
    from segkit.data.demo import make_demo_dataset

    second = tmp_path / "second"
    make_demo_dataset(second, num_train=6, num_val=1, num_test=1, size=64, seed=3, progress=False)
    sources = (f"data['train'].update(ann=None, sources=[dict(ann='train.json'), dict(ann='{second}/train.json', "
               f"img_dir='{second}/images', weight=1.5)])\n")
    config = tiny_config(epochs=2, extra=EXTRA + sources)
    straight = tmp_path / "straight"
    assert train_main([str(config), "--work-dir", str(straight), "--no-progress", "--device", "cpu"]) == 0

    resumed = tmp_path / "resumed"
    killed = run_killed(config, resumed, kill_at=6, tmp_path=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    interrupted = load_checkpoint(resumed / "checkpoints" / "last.pth")
    assert (interrupted["iter"], interrupted["epoch"], interrupted["epoch_step"]) == (5, 1, 1)  # 4 steps an epoch
    assert train_main([str(config), "--work-dir", str(resumed), "--resume", "--no-progress", "--device", "cpu"]) == 0

    a = load_checkpoint(straight / "checkpoints" / "last.pth")
    b = load_checkpoint(resumed / "checkpoints" / "last.pth")
    assert (a["epoch"], a["iter"]) == (b["epoch"], b["iter"]) == (2, 8)
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert metric_lines(straight) == metric_lines(resumed)


def test_a_kill_during_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    path = tmp_path / "last.pth"
    save_checkpoint({"epoch": 0, "model": {"w": torch.zeros(4)}}, path)
    writer = textwrap.dedent(f"""
        import torch
        from segkit.engine.checkpoint import save_checkpoint
        big = torch.randn(64, 1024, 1024)  # 256 MB: the kill lands mid-write
        for epoch in range(1, 1000):
            save_checkpoint({{"epoch": epoch, "model": {{"w": big}}}}, {str(path)!r})
    """)
    for delay in (0.5, 1.5):
        proc = subprocess.Popen([sys.executable, "-c", writer])
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        state = load_checkpoint(path)  # whichever complete version was last renamed into place
        assert state["epoch"] >= 0 and state["model"]["w"].numel() in (4, 64 * 1024 * 1024)


def test_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tiny_config, tmp_path, monkeypatch, capsys):
    from segkit.engine import objective

    work_dir = tmp_path / "w"
    config = tiny_config(epochs=2)
    original = objective.Objective.__call__
    calls = {"n": 0}

    def nan_after_epoch_one(self, outputs, masks):
        calls["n"] += 1
        numerator, normaliser = original(self, outputs, masks)
        return (numerator * float("nan"), normaliser) if calls["n"] > 2 else (numerator, normaliser)

    monkeypatch.setattr(objective.Objective, "__call__", nan_after_epoch_one)
    assert train_main([str(config), "--work-dir", str(work_dir), "--no-progress", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loss became nan at epoch 2, iter 3" in err[0]
    assert load_checkpoint(work_dir / "checkpoints" / "last.pth")["iter"] == 2


def test_resume_without_checkpoint_is_a_clear_error(tiny_config, tmp_path, capsys):
    code = train_main([str(tiny_config(epochs=1)), "--work-dir", str(tmp_path / "none"), "--resume"])
    assert code == 2 and "no checkpoint at" in capsys.readouterr().err


def test_weights_only_checkpoint_cannot_resume(tiny_config, tmp_path):
    from segkit.config import load_config
    from segkit.engine.trainer import Trainer

    trainer = Trainer(load_config(tiny_config(epochs=1)), tmp_path / "w", torch.device("cpu"), progress=False)
    save_checkpoint({"model": trainer.model.state_dict(), "classes": trainer.classes}, tmp_path / "swa.pth")
    with pytest.raises(SegkitError, match="holds weights only"):
        trainer.resume(tmp_path / "swa.pth")


def test_resume_into_an_fp16_scaler_from_a_checkpoint_without_one(tiny_config, tmp_path):
    """A CPU (bf16) or amp=False checkpoint stores an empty scaler state; a CUDA fp16 resume must accept it."""
    from segkit.config import load_config
    from segkit.engine.trainer import Trainer

    config = load_config(tiny_config(epochs=1))
    trainer = Trainer(config, tmp_path / "w", torch.device("cpu"), progress=False)
    save_checkpoint(trainer.state_dict(), tmp_path / "cpu.pth")
    resumed = Trainer(config, tmp_path / "w2", torch.device("cpu"), progress=False)
    resumed.scaler = torch.amp.GradScaler("cpu", enabled=True)  # what an fp16 CUDA run has
    resumed.resume(tmp_path / "cpu.pth")
    assert resumed.scaler.is_enabled()
