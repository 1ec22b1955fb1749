"""torchrun with 2 CPU processes (gloo): training works and its validation equals a single-process test."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

import segkit.cli.test as test_cli

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not dist.is_gloo_available(), reason="torch built without gloo")
def test_torchrun_two_processes_matches_single_process_test(tiny_config, tmp_path):
    config = tiny_config(epochs=2, extra="train.update(sync_bn=True)\n")
    work_dir = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(REPO / "tools" / "train.py"), str(config), "--work-dir", str(work_dir), "--no-progress",
           "--device", "cpu"]
    for extra in ([], ["--overwrite"]):  # the second run replaces the first: every rank must accept that
        result = subprocess.run(cmd + extra, capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]  # rank 0 alone writes: no duplicated lines
    assert records[-1]["iter"] == 2  # 8 images / (2 ranks x batch 4) = 1 step per epoch

    out = tmp_path / "single.json"
    assert test_cli.main([str(config), str(work_dir / "checkpoints" / "last.pth"), "--out", str(out),
                          "--no-progress", "--device", "cpu"]) == 0
    single = json.loads(out.read_text())
    assert single["mIoU"] == pytest.approx(records[-1]["mIoU"], abs=1e-12)
    assert single["IoU"] == pytest.approx(records[-1]["IoU"], abs=1e-12)
