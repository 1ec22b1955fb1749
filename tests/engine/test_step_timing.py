"""Where the time goes: data wait, step time and images/s per log interval, and the run's images/s."""

import json

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from segkit.cli.train import main as train_main


def test_data_and_step_time_reach_tensorboard_the_log_and_the_summary(tiny_config, tmp_path):
    work_dir = tmp_path / "run"
    assert train_main([str(tiny_config(epochs=1)), "--work-dir", str(work_dir), "--no-progress", "--device",
                       "cpu"]) == 0
    events = EventAccumulator(str(work_dir / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/data_time", "train/step_time", "train/images_per_s"} <= tags
    steps = [e.step for e in events.Scalars("train/step_time")]
    assert steps == [1, 2]  # log_interval=1, 8 images / batch 4
    assert all(e.value > 0 for e in events.Scalars("train/step_time"))
    assert all(e.value >= 0 for e in events.Scalars("train/data_time"))
    assert all(e.value > 0 for e in events.Scalars("train/images_per_s"))
    log = (work_dir / "train.log").read_text()
    assert "epoch 1 iter 2 loss" in log and "img/s" in log and " data " in log and " step " in log
    summary = json.loads((work_dir / "summary.json").read_text())
    assert summary["images_per_s"] > 0 and summary["train_seconds"] >= 0
