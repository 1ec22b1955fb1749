"""Options that must work end to end: bf16 autocast on the CPU, gradient clipping, accumulation, keep-last-k."""

import json

from segkit.cli.train import main as train_main
from segkit.engine.checkpoint import load_checkpoint

OPTIONS = "train.update(amp=True, grad_clip=1.0, accumulate=2, keep_last=1)\ndata.update(batch_size=2)\n"


def test_amp_clipping_accumulation_and_keep_last(tiny_config, tmp_path):
    work_dir = tmp_path / "run"
    config = tiny_config(epochs=3, extra=OPTIONS)
    assert train_main([str(config), "--work-dir", str(work_dir), "--no-progress", "--device", "cpu"]) == 0
    checkpoints = sorted(p.name for p in (work_dir / "checkpoints").iterdir())
    assert checkpoints == ["best.pth", "epoch_3.pth", "last.pth"]
    last = load_checkpoint(work_dir / "checkpoints" / "last.pth")
    assert last["iter"] == 6  # 8 images / batch 2 = 4 micro-batches = 2 steps per epoch
    records = [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records] == [2, 4, 6]
    log = (work_dir / "train.log").read_text()
    assert "loss nan" not in log and "loss inf" not in log
