"""On CUDA (skipped without a GPU): CUDA checkpoints resume on the CPU, and the trainer benchmark runs against
the bare loop on the device. The sync-free step is tested in test_sync_free_step.py, fp16/bf16 training of
every architecture in tests/models/test_architectures.py."""

import argparse
import json
import re

import pytest
import torch

from segkit.benchmarks import trainer as trainer_bench
from segkit.cli.train import main as train_main
from segkit.engine.checkpoint import load_checkpoint


@pytest.mark.cuda
def test_a_checkpoint_saved_on_cuda_resumes_on_the_cpu(tiny_config, tmp_path):
    config = tiny_config(epochs=2, extra="train.update(amp=True, keep_last=2, ema=dict(decay=0.9))\n")
    gpu = tmp_path / "gpu"
    assert train_main([str(config), "--work-dir", str(gpu), "--no-progress", "--device", "cuda"]) == 0
    first = gpu / "checkpoints" / "epoch_1.pth"
    state = load_checkpoint(first)
    assert state["scaler"] and all(t.device.type == "cpu" for t in state["model"].values())
    cpu = tmp_path / "cpu"
    assert train_main([str(config), "--work-dir", str(cpu), "--resume", str(first), "--no-progress", "--device",
                       "cpu"]) == 0
    resumed = load_checkpoint(cpu / "checkpoints" / "last.pth")
    assert (resumed["epoch"], resumed["iter"]) == (2, 4)
    assert all(torch.isfinite(t).all() for t in resumed["model"].values() if t.is_floating_point())
    assert json.loads((cpu / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 2


@pytest.mark.cuda
def test_trainer_benchmark_runs_on_cuda_against_the_bare_loop(capsys):
    parser = argparse.ArgumentParser()
    trainer_bench.add_arguments(parser)
    assert trainer_bench.run(parser.parse_args(["--device", "cuda", "--batch", "2", "--size", "64",
                                                "--repeats", "3"])) == 0
    out = capsys.readouterr().out
    assert re.search(r"segkit / bare = [\d.]+x", out) and ", cuda, " in out
