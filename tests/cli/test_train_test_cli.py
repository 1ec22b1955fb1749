"""End to end through the CLIs on a tiny generated dataset: work dir contract, test.py agreement, resume, errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import segkit.cli.test as test_cli
from segkit.cli.train import main as train_main

REPO = Path(__file__).resolve().parents[2]


def read_metrics(work_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]


def test_train_writes_the_work_dir_contract_and_test_reproduces_best(tiny_config, tmp_path, capsys):
    config = tiny_config(epochs=2)
    work_dir = tmp_path / "run"
    assert train_main([str(config), "--work-dir", str(work_dir), "--no-progress", "--device", "cpu"]) == 0
    for name in ("config.py", "train.log", "metrics.jsonl", "summary.json", "checkpoints/last.pth",
                 "checkpoints/best.pth"):
        assert (work_dir / name).is_file(), name
    assert list((work_dir / "tb").glob("events.out.tfevents.*"))
    records = read_metrics(work_dir)
    assert [r["epoch"] for r in records] == [1, 2] and records[-1]["iter"] == 4
    for record in records:
        assert set(record) >= {"epoch", "iter", "mIoU", "mAcc", "aAcc", "IoU", "Acc"}
        assert 0.0 <= record["mIoU"] <= 1.0 and list(record["IoU"])[0] == "Background"
    summary = json.loads((work_dir / "summary.json").read_text())
    best = max(records, key=lambda r: r["mIoU"])
    assert summary["best_mIoU"] == best["mIoU"] and summary["best_epoch"] == best["epoch"]

    out = tmp_path / "test_metrics.json"
    assert test_cli.main([str(config), str(work_dir / "checkpoints/best.pth"), "--out", str(out), "--no-progress"]) == 0
    tested = json.loads(out.read_text())
    assert tested["mIoU"] == pytest.approx(best["mIoU"], abs=1e-12)
    assert tested["IoU"] == pytest.approx(best["IoU"], abs=1e-12)
    assert "Background" in capsys.readouterr().out

    # The resolved config is a loadable config that trains the same way.
    assert (work_dir / "config.py").read_text().count("decoder_channels") == 1

    # Resuming a finished run changes nothing; resuming it under another schedule is refused with the way out.
    assert train_main([str(config), "--work-dir", str(work_dir), "--resume", "--no-progress"]) == 0
    assert read_metrics(work_dir) == records
    capsys.readouterr()
    longer = tiny_config(epochs=3)
    assert train_main([str(longer), "--work-dir", str(work_dir), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "started with train.epochs=2, now 3" in err and "model.pretrained=" in err


def test_a_second_run_in_the_same_work_dir_is_refused(tiny_demo, tiny_config, tmp_path, capsys):
    work_dir = tmp_path / "run"
    (work_dir / "checkpoints").mkdir(parents=True)
    (work_dir / "checkpoints" / "last.pth").write_bytes(b"earlier run")
    config = tiny_config(epochs=1)
    assert train_main([str(config), "--work-dir", str(work_dir)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (work_dir / "checkpoints" / "last.pth").read_bytes() == b"earlier run"


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segkit: error: "), err
    return err[0]


def test_missing_annotation_file(tiny_demo, tiny_config, tmp_path, capsys):
    config = tiny_config(epochs=1)
    code = train_main([str(config), "--work-dir", str(tmp_path / "w"), "--set", "data.train.ann=nope.json"])
    assert code == 2 and "nope.json" in one_error_line(capsys)


def test_listed_image_missing_on_disk(tiny_demo, tiny_config, tmp_path, capsys):
    ann = json.loads((tiny_demo / "train.json").read_text())
    ann["images"][0]["file_name"] = "train/missing.jpg"
    (tiny_demo / "broken.json").write_text(json.dumps(ann))
    config = tiny_config(epochs=1)
    code = train_main([str(config), "--work-dir", str(tmp_path / "w"), "--set", "data.train.ann=broken.json"])
    assert code == 2 and "missing.jpg" in one_error_line(capsys)


def test_unknown_category_id(tiny_demo, tiny_config, tmp_path, capsys):
    ann = json.loads((tiny_demo / "train.json").read_text())
    ann["annotations"][0]["category_id"] = 77
    (tiny_demo / "badcat.json").write_text(json.dumps(ann))
    config = tiny_config(epochs=1)
    code = train_main([str(config), "--work-dir", str(tmp_path / "w"), "--set", "data.train.ann=badcat.json"])
    assert code == 2 and "77" in one_error_line(capsys)


def test_malformed_config_exits_2_with_one_line_and_debug_shows_traceback(tmp_path):
    config = tmp_path / "broken.py"
    config.write_text("model = dict(type='Unet'\n")
    cmd = [sys.executable, str(REPO / "tools" / "train.py"), str(config)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "broken.py:1" in result.stderr
    debug = subprocess.run(cmd + ["--debug"], capture_output=True, text=True, cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
