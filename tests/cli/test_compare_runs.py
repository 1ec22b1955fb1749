"""compare_runs: only the config keys that differ, best values per run, deltas, plots, globs, bad input."""

import csv
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from segkit.cli.compare_runs import main as compare_main
from segkit.cli.train import main as train_main
from segkit.config import load_config
from segkit.experiments.compare import compare, differing_keys, flatten, render
from segkit.experiments.runs import find_runs


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory, tiny_demo):
    """Three tiny demo runs: a CE baseline, a focal-loss run, and a run with another learning rate."""
    from tests.conftest import REPO, TINY_CONFIG

    root = tmp_path_factory.mktemp("runs")
    config = root / "tiny.py"
    config.write_text(TINY_CONFIG.format(repo=REPO, root=tiny_demo, epochs=2))
    variants = {"ce": [], "focal": ["loss={'type': 'Focal', 'gamma': 2.0}"], "lr": ["optimizer.lr=0.0005"]}
    for name, overrides in variants.items():
        args = [str(config), "--work-dir", str(root / "work_dirs" / name), "--no-progress", "--device", "cpu"]
        assert train_main(args + (["--set", *overrides] if overrides else [])) == 0
    return root / "work_dirs"


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_three_demo_runs_show_exactly_the_differing_keys_best_values_and_deltas(three_runs, tmp_path, capsys):
    plot = tmp_path / "curves.png"
    assert compare_main([str(three_runs / "*"), "--baseline", str(three_runs / "ce"), "--format", "csv",
                         "--plot", str(plot)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    header = list(rows[0])
    assert header[:5] == ["run", "values", "loss.type", "loss.gamma", "optimizer.lr"]
    assert header[5:7] == ["mIoU", "epoch"] and header[7] == "Background"
    by_run = {r["run"]: r for r in rows}
    assert list(by_run) == ["ce", "focal", "lr"]
    assert by_run["focal"]["loss.type"] == "Focal" and by_run["focal"]["loss.gamma"] == "2.0"
    assert by_run["ce"]["loss.gamma"] == "-" and by_run["lr"]["optimizer.lr"] == "0.0005"

    best = {name: max(_metrics(three_runs / name), key=lambda m: m["mIoU"]) for name in by_run}
    assert float(by_run["ce"]["mIoU"]) == pytest.approx(best["ce"]["mIoU"], abs=1e-4)
    for name in ("focal", "lr"):  # deltas against the baseline, for mIoU and every class
        assert float(by_run[name]["mIoU"]) == pytest.approx(best[name]["mIoU"] - best["ce"]["mIoU"], abs=1e-4)
        for cls, iou in best[name]["IoU"].items():
            base = best["ce"]["IoU"][cls]
            if iou is not None and base is not None:
                assert float(by_run[name][cls]) == pytest.approx(iou - base, abs=1e-4)
        assert int(by_run[name]["epoch"]) == best[name]["epoch"]
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 600


def test_markdown_marks_the_best_of_each_column_and_sorts(three_runs, capsys):
    assert compare_main([str(three_runs), "--sort", "mIoU"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = [ln for ln in lines if ln.startswith("| ") and not ln.startswith("| run")]
    scores = [float(ln.split(" | ")[4].strip("*")) for ln in table]
    assert scores == sorted(scores, reverse=True)
    assert table[0].split(" | ")[4].startswith("**")  # the top mIoU is bold
    assert any("best of each column in bold" in ln for ln in lines)


def test_flatten_indexes_lists_of_dicts_and_keeps_tuples_whole():
    cfg = {"data": {"mean": (1, 2, 3), "train": {"pipeline": [{"type": "A"}, {"type": "B", "p": 0.5}]}}}
    assert flatten(cfg) == {"data.mean": (1, 2, 3), "data.train.pipeline[0].type": "A",
                            "data.train.pipeline[1].type": "B", "data.train.pipeline[1].p": 0.5}
    other = {"data": {"mean": (1, 2, 3), "train": {"pipeline": [{"type": "A"}, {"type": "B", "p": 0.3}]}}}
    assert differing_keys([cfg, other]) == ["data.train.pipeline[1].p"]
    assert differing_keys([cfg, {"work_dir": "x", **cfg}]) == []  # where a run was written does not count


def test_runs_with_different_classes_are_compared_on_the_shared_ones(three_runs, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.py").write_text((three_runs / "ce" / "config.py").read_text())
    line = {"epoch": 1, "iter": 2, "mIoU": 0.5, "IoU": {"Background": 0.9, "Paper": 0.1, "Extra": 0.5}}
    (other / "metrics.jsonl").write_text(json.dumps(line) + "\n")
    runs = find_runs([str(three_runs / "ce"), str(other)])
    comparison = compare(runs)
    assert "Extra" not in comparison.metrics and "mIoU (shared)" in comparison.metrics
    assert comparison.values["other"]["mIoU (shared)"] == pytest.approx(0.5)
    assert "different class lists" in render(comparison)


def test_bad_input_is_one_line(three_runs, tmp_path, capsys):
    assert compare_main([str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert compare_main([str(tmp_path / "empty")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert compare_main([str(three_runs), "--sort", "nope"]) == 2
    assert "--sort nope: no such column" in capsys.readouterr().err
    assert compare_main([str(three_runs), "--baseline", "nope"]) == 2
    assert "--baseline nope" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.py").write_text((three_runs / "ce" / "config.py").read_text())
    (broken / "metrics.jsonl").write_text("{not json\n")
    assert compare_main([str(broken)]) == 2
    assert "metrics.jsonl:1: not a JSON line" in capsys.readouterr().err


def test_summary_carries_what_a_comparison_needs(three_runs):
    summary = json.loads((three_runs / "focal" / "summary.json").read_text())
    best = max(_metrics(three_runs / "focal"), key=lambda m: m["mIoU"])
    assert summary["best_IoU"] == best["IoU"] and summary["best_mIoU"] == best["mIoU"]
    assert len(summary["config_hash"]) == 12
    assert summary["parameters"] >= summary["trainable_parameters"] > 0
    assert summary["versions"]["segkit"] and summary["versions"]["torch"]
    assert summary["train_seconds"] > 0
    assert summary["git"] is None or set(summary["git"]) == {"commit", "dirty"}
    hashes = {json.loads((three_runs / n / "summary.json").read_text())["config_hash"] for n in ("ce", "focal", "lr")}
    assert len(hashes) == 3
    same = load_config(three_runs / "ce" / "config.py").to_dict()
    from segkit.engine.provenance import config_hash

    assert config_hash({**same, "work_dir": "elsewhere"}) == config_hash(same)


def _copy_run(source: Path, target: Path, metrics: str | None = None) -> Path:
    target.mkdir(parents=True)
    (target / "config.py").write_text((source / "config.py").read_text())
    (target / "metrics.jsonl").write_text((source / "metrics.jsonl").read_text() if metrics is None else metrics)
    return target


def test_a_run_without_validation_is_listed_and_crashed_runs_in_folders_are_named(three_runs, tmp_path, capsys):
    waiting = _copy_run(three_runs / "ce", tmp_path / "runs" / "waiting", metrics="")
    crashed = tmp_path / "runs" / "crashed"
    crashed.mkdir()
    (crashed / "config.py").write_text((three_runs / "ce" / "config.py").read_text())
    _copy_run(three_runs / "focal", tmp_path / "runs" / "focal")
    assert compare_main([str(three_runs / "ce"), str(waiting)]) == 0  # was KeyError: 'mIoU (shared)'
    out = capsys.readouterr().out
    assert "waiting: no validation yet" in out and "different class lists" not in out
    assert compare_main([str(tmp_path / "runs"), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert f"{crashed}: left out" in captured.err and "crashed" not in captured.out
    assert [r["run"] for r in csv.DictReader(io.StringIO(captured.out))] == ["focal", "waiting"]


def test_a_tuple_in_the_file_and_a_list_on_the_command_line_are_not_a_difference(three_runs, tmp_path, capsys):
    text = (three_runs / "ce" / "config.py").read_text()
    assert "'decoder_channels': (32, 16, 16, 8, 8)" in text
    listed = _copy_run(three_runs / "ce", tmp_path / "listed")
    (listed / "config.py").write_text(text.replace("(32, 16, 16, 8, 8)", "[32, 16, 16, 8, 8]"))
    assert compare_main([str(three_runs / "ce"), str(listed), "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert header[:3] == ["run", "mIoU", "epoch"]  # no config key differs


def test_csv_with_a_baseline_says_which_rows_are_differences_in_full_precision(three_runs, capsys):
    assert compare_main([str(three_runs), "--baseline", "ce", "--format", "csv"]) == 0
    rows = {r["run"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows["ce"]["values"] == "absolute" and rows["focal"]["values"] == "minus ce"
    best = {name: max(_metrics(three_runs / name), key=lambda m: m["mIoU"]) for name in ("ce", "focal")}
    assert rows["ce"]["mIoU"] == repr(best["ce"]["mIoU"])
    assert rows["focal"]["mIoU"] == repr(best["focal"]["mIoU"] - best["ce"]["mIoU"])


def test_sort_orders_scores_best_first_and_config_keys_ascending(three_runs, capsys):
    assert compare_main([str(three_runs), "--sort", "optimizer.lr", "--format", "csv"]) == 0
    assert [r["run"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))] == ["lr", "ce", "focal"]
    assert compare_main([str(three_runs), "--sort", "loss.gamma", "--format", "csv"]) == 0
    assert [r["run"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))][0] == "focal"  # '-' last


@pytest.mark.parametrize("flag, target, message", [
    ("--out", lambda t: t, "is a folder"),
    ("--plot", lambda t: t, "is a folder"),
    ("--out", lambda t: t / "file.txt" / "table.md", "is a file, not a folder"),
    ("--out", lambda t: Path("/proc/segkit_table.md"), "cannot write in /proc"),
])
def test_bad_output_paths_are_refused_before_reading_runs(tmp_path, capsys, flag, target, message):
    (tmp_path / "file.txt").write_text("x")
    broken = tmp_path / "broken"  # reading it would fail: the path check must come first
    broken.mkdir()
    (broken / "config.py").write_text("model = dict(\n")
    (broken / "metrics.jsonl").write_text("{not json\n")
    assert compare_main([str(broken), flag, str(target(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and flag in err, err
