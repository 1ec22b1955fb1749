"""sweep: arms x seeds as runs, mean ± std tables, TTA on the checkpoints, resume after a kill, changed configs."""

import csv
import json
import shutil
import statistics
from pathlib import Path

import pytest

from segkit.cli.compare_runs import main as compare_main
from segkit.cli.sweep import main as sweep_main
from segkit.errors import SegkitError
from segkit.experiments.runs import load_run
from segkit.experiments.sweep import named_arm, parse_grid, parse_tta, plan_arms

ARMS = ("CrossEntropy", "Focal")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_demo):
    """2 arms x 2 seeds of 1 epoch on the tiny demo set, evaluated with and without flip TTA."""
    from tests.conftest import REPO, TINY_CONFIG

    root = tmp_path_factory.mktemp("sweep")
    config = root / "tiny.py"
    config.write_text(TINY_CONFIG.format(repo=REPO, root=tiny_demo, epochs=1)
                      + "evaluation = dict(boundary_iou=True, panels=False, hparams=False)\n")
    args = [str(config), "--grid", "loss.type=CrossEntropy,Focal", "--seeds", "2", "--work-dir", str(root / "sw"),
            "--no-progress", "--device", "cpu"]
    assert sweep_main(args + ["--eval-tta", "none,flip"]) == 0
    return root / "sw", args


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*.pth")}


def test_every_arm_and_seed_is_a_run_and_the_table_holds_mean_and_std(sweep, capsys):
    root, args = sweep
    values = {}
    for arm in ARMS:
        for seed in range(2):
            run = load_run(root / arm / f"seed{seed}")
            assert run.config["loss"]["type"] == arm and run.config["train"]["seed"] == 42 + seed
            assert (run.path / "done.json").is_file()
            values.setdefault(arm, []).append(run.best["mIoU"])
            tta_none = json.loads((run.path / "tta" / "none.json").read_text())
            assert tta_none["mIoU"] == run.best["mIoU"]  # the Predictor without TTA reproduces validation
            assert "mBoundaryIoU" in json.loads((run.path / "tta" / "flip.json").read_text())
    rows = {r["arm"]: r for r in csv.DictReader((root / "arms.csv").open())}
    for arm in ARMS:
        assert float(rows[arm]["mIoU mean"]) == pytest.approx(statistics.fmean(values[arm]))
        assert float(rows[arm]["mIoU std"]) == pytest.approx(statistics.stdev(values[arm]))
        assert rows[arm]["loss.type"] == arm and rows[arm]["seeds"] == "2"
        assert float(rows[arm]["mIoU min"]) == pytest.approx(min(values[arm]))
    assert "IoU Background mean" in rows[ARMS[0]] and "mBoundaryIoU mean" in rows[ARMS[0]]
    table = (root / "arms.md").read_text()
    assert " ± " in table and "| loss.type |" in table
    assert "mIoU flip" in (root / "tta.md").read_text() and (root / "tta.csv").is_file()


def test_compare_runs_group_seeds_gives_the_sweep_table(sweep, capsys):
    root, _ = sweep
    capsys.readouterr()
    assert compare_main([str(root), "--group-seeds", "--format", "csv"]) == 0
    grouped = {r["arm"]: r for r in csv.DictReader(capsys.readouterr().out.splitlines())}
    swept = {r["arm"]: r for r in csv.DictReader((root / "arms.csv").open())}
    assert set(grouped) == set(ARMS)
    for arm in ARMS:
        assert grouped[arm]["mIoU mean"] == swept[arm]["mIoU mean"]
        assert grouped[arm]["mIoU std"] == swept[arm]["mIoU std"]


def test_rerun_keeps_finished_runs_and_settings_that_do_not_change_results(sweep, capsys):
    root, args = sweep
    before = _mtimes(root)
    assert sweep_main(args + ["--set", "data.num_workers=1", "train.log_interval=5"]) == 0
    assert _mtimes(root) == before
    assert "2 | " in capsys.readouterr().out


def test_a_killed_sweep_resumes_started_runs_and_starts_missing_ones(sweep, tmp_path):
    root, args = sweep
    copy = tmp_path / "sw"
    shutil.copytree(root, copy)
    args = [a if a != str(root) else str(copy) for a in args]
    killed = copy / "Focal" / "seed1"  # killed after its last checkpoint: no completion record yet
    (killed / "done.json").unlink()
    (killed / "summary.json").unlink()
    abandoned = copy / "CrossEntropy" / "seed1"  # killed before its first checkpoint
    shutil.rmtree(abandoned / "checkpoints")
    (abandoned / "done.json").unlink()
    kept = _mtimes(copy / "CrossEntropy" / "seed0")
    assert sweep_main(args) == 0
    assert (killed / "done.json").is_file() and (killed / "summary.json").is_file()
    assert (abandoned / "done.json").is_file() and (abandoned / "checkpoints" / "best.pth").is_file()
    assert len(load_run(abandoned).metrics) == 1  # started afresh: no line of the abandoned attempt stays
    assert _mtimes(copy / "CrossEntropy" / "seed0") == kept


def test_a_finished_run_with_another_config_is_refused_naming_the_key(sweep, capsys):
    root, args = sweep
    before = _mtimes(root)
    assert sweep_main(args + ["--set", "optimizer.lr=0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "optimizer.lr" in err and "finished with another config" in err
    assert _mtimes(root) == before


def test_a_table_of_a_sweep_still_running_says_it_is_partial(sweep, tmp_path, capsys):
    root, args = sweep
    copy = tmp_path / "sw"
    shutil.copytree(root, copy)
    (copy / "Focal" / "seed0" / "done.json").unlink()  # still training
    capsys.readouterr()
    assert sweep_main([a if a != str(root) else str(copy) for a in args] + ["--table-only"]) == 0
    out = capsys.readouterr().out
    assert "partial: finished seeds per arm Focal 1/2" in out
    assert "| Focal | Focal | 1 |" in out


def test_grid_values_are_literals_split_outside_brackets():
    assert parse_grid("loss.type=CrossEntropy,Focal") == ("loss.type", ["CrossEntropy", "Focal"])
    key, values = parse_grid("loss={'type': 'Combo', 'losses': [{'type': 'Dice'}, {'type': 'CrossEntropy'}]},"
                             "{'type': 'Lovasz'}")
    assert key == "loss" and values[0]["losses"][1] == {"type": "CrossEntropy"} and values[1] == {"type": "Lovasz"}
    assert parse_grid("train.ema=None,{'decay': 0.99}")[1] == [None, {"decay": 0.99}]
    assert parse_grid("data.root=/a/b,/c")[1] == ["/a/b", "/c"]
    arms = plan_arms([parse_grid("optimizer.lr=0.001,0.01"), parse_grid("loss.type=CrossEntropy,Focal")])
    assert [a.name for a in arms] == ["lr=0.001__type=CrossEntropy", "lr=0.001__type=Focal",
                                      "lr=0.01__type=CrossEntropy", "lr=0.01__type=Focal"]
    arms = plan_arms([], [named_arm(["ema", "train.ema={'decay': 0.999}"])])
    assert [(a.name, a.overrides) for a in arms] == [("base", ()), ("ema", (("train.ema", {"decay": 0.999}),))]
    assert parse_tta("none,flip+scales") == ["none", "flip+scales"]


@pytest.mark.parametrize("grid, arm, message", [
    (["loss.type"], [], "expected KEY=V1,V2"),
    (["loss.type=CE,CE"], [], "listed twice"),
    (["loss.type=CE", "loss.type=Focal"], [], "a key is given twice"),
    (["loss={'type': 'Focal'},{'type': 'Focal', 'gamma': 1.0}"], [], "would share a folder"),
    ([], [["ema"]], "expected a folder-safe NAME"),
])
def test_bad_grids_are_one_line_errors(grid, arm, message):
    with pytest.raises(SegkitError, match=message):
        plan_arms([parse_grid(g) for g in grid], [named_arm(a) for a in arm])


@pytest.mark.parametrize("extra, message", [
    (["--seeds", "0"], "--seeds 0"),
    (["--eval-tta", "flop"], "--eval-tta 'flop'"),
    (["--set", "data.batch_sizee=1"], "data.batch_sizee"),
])
def test_bad_options_fail_before_anything_is_written(tiny_config, tmp_path, capsys, extra, message):
    work = tmp_path / "sw"
    assert sweep_main([str(tiny_config(1)), "--grid", "loss.type=CrossEntropy", "--work-dir", str(work), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not work.exists()


def test_results_page_marks_partial_sweeps_and_claims_effects_only_beyond_two_std(sweep, tmp_path):
    from segkit.cli.results_doc import main as results_main
    from segkit.experiments.results_doc import effect
    from segkit.experiments.seeds import Spread

    root, _ = sweep
    out = tmp_path / "results.md"
    assert results_main([str(root), "--highlight", "Background", "--out", str(out)]) == 0
    page = out.read_text()
    assert "Complete: 2 seeds for each of 2 arms." in page and "| CrossEntropy | CrossEntropy | 2 |" in page
    assert "IoU Background" in page and "mIoU flip" in page and "Recommended:" in page
    copy = tmp_path / "sw"
    shutil.copytree(root, copy)
    (copy / "Focal" / "seed1" / "done.json").unlink()
    assert results_main([str(copy), "--out", str(out)]) == 0
    assert "**PARTIAL**: finished seeds per arm: CrossEntropy 2/2, Focal 1/2" in out.read_text()
    assert "No verdict yet" in out.read_text()
    base = Spread(3, 0.50, 0.01, 0.49, 0.51)
    assert effect(Spread(3, 0.53, 0.01, 0.52, 0.54), base) == "+3.00 (effect, 2 std = 2.00)"
    assert effect(Spread(3, 0.53, 0.02, 0.51, 0.55), base) == "+3.00 (no effect, 2 std = 4.00)"
    assert effect(Spread(1, 0.60, None, 0.60, 0.60), base) == "+10.00 (one seed: no claim)"
    assert results_main([str(root), "--out", str(tmp_path)]) == 2
