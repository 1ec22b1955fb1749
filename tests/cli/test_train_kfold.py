"""train_kfold: fold runs, out-of-fold mIoU equal to an independent count over the saved predictions, resume."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segkit.cli.train_kfold import main as kfold_main
from segkit.config import load_config
from segkit.data.coco import CocoSegDataset
from segkit.experiments.runs import find_runs


@pytest.fixture(scope="module")
def kfold_run(tmp_path_factory, tiny_demo):
    from tests.conftest import REPO, TINY_CONFIG

    root = tmp_path_factory.mktemp("kfold")
    config = root / "tiny.py"
    config.write_text(TINY_CONFIG.format(repo=REPO, root=tiny_demo, epochs=2))
    work = root / "kfold"
    args = [str(config), "--folds", "2", "--work-dir", str(work), "--no-progress", "--device", "cpu"]
    assert kfold_main(args) == 0
    return config, work, args


def _independent_miou(work: Path, tiny_demo: Path, folds: int) -> tuple[float, list[float]]:
    """Confusion matrix of the saved PNGs against masks rasterised again from each held-out json."""
    total, per_fold = None, []
    for k in range(folds):
        held_out = CocoSegDataset(tiny_demo, ann=str(work / "folds" / f"val_{k}.json"), cache=False)
        n = held_out.num_classes
        cm = np.zeros((n, n), np.int64)
        for i in range(len(held_out)):
            gt = held_out.mask(i).astype(np.int64)
            name = Path(held_out.images[i]["file_name"]).with_suffix(".png")
            pred = cv2.imread(str(work / "oof" / f"fold{k}" / name), cv2.IMREAD_UNCHANGED).astype(np.int64)
            keep = gt != 255
            cm += np.bincount(gt[keep] * n + pred[keep], minlength=n * n).reshape(n, n)
        per_fold.append(_miou(cm))
        total = cm if total is None else total + cm
    return _miou(total), per_fold


def _miou(cm: np.ndarray) -> float:
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    present = union > 0
    return float((tp[present] / union[present]).mean())


def test_two_folds_train_and_oof_equals_an_independent_computation(kfold_run, tiny_demo, capsys):
    config, work, _ = kfold_run
    for k in range(2):
        assert (work / f"fold{k}" / "checkpoints" / "best.pth").is_file()
        fold_cfg = load_config(work / f"fold{k}" / "config.py")
        assert fold_cfg.data.val.ann.endswith(f"val_{k}.json") and fold_cfg.data.train.ann.endswith(f"train_{k}.json")
    train = [json.loads((work / "folds" / f"val_{k}.json").read_text())["images"] for k in range(2)]
    names = [{img["file_name"] for img in fold} for fold in train]
    assert not names[0] & names[1] and len(names[0] | names[1]) == 8  # every image held out exactly once

    record = json.loads((work / "oof" / "oof.json").read_text())
    oof_miou, per_fold = _independent_miou(work, tiny_demo, 2)
    assert record["oof"]["mIoU"] == pytest.approx(oof_miou, abs=1e-12)
    assert [f["mIoU"] for f in record["folds"]] == pytest.approx(per_fold, abs=1e-12)
    # The Predictor's held-out numbers are the fold's own best validation (same weights, same images).
    for fold in record["folds"]:
        assert fold["mIoU"] == pytest.approx(fold["val_best_mIoU"], abs=1e-12)
    spread = record["spread"]
    assert spread["min"] <= spread["mean"] <= spread["max"] and spread["std"] >= 0
    assert sum(record["oof"]["confusion_matrix"][0]) > 0


def test_rerun_skips_finished_folds_and_prints_the_ensemble_command(kfold_run, capsys):
    _, work, args = kfold_run
    before = (work / "fold0" / "metrics.jsonl").read_text()
    assert kfold_main(args) == 0
    out = capsys.readouterr().out
    assert (work / "fold0" / "metrics.jsonl").read_text() == before
    assert "out-of-fold metrics over 8 held-out images" in out and "fold spread" in out
    assert "each fold predicted by its best.pth, chosen on that same held-out fold" in out
    assert f"tools/infer_tta.py {work}/fold0/checkpoints/best.pth {work}/fold1/checkpoints/best.pth" in out
    assert [r.name for r in find_runs([str(work)])] == ["fold0", "fold1"]  # compare_runs sees the folds


def test_one_fold_per_job_a_kill_before_best_pth_resumes_and_the_message_lists_finished_folds(kfold_run, tmp_path,
                                                                                             capsys):
    config, _, _ = kfold_run
    work = tmp_path / "jobs"
    base = [str(config), "--folds", "3", "--work-dir", str(work), "--no-progress", "--device", "cpu",
            "--set", "train.epochs=1"]  # one epoch: the last validation is the best, so last.pth == best.pth
    assert kfold_main(base + ["--fold", "2"]) == 0
    assert "fold(s) 2 done" in capsys.readouterr().out and (work / "fold2" / "fold_done.json").is_file()
    # A kill after last.pth (same state as best.pth) but before best.pth and the completion record:
    metrics = (work / "fold2" / "metrics.jsonl").read_text()
    (work / "fold2" / "checkpoints" / "best.pth").unlink()
    (work / "fold2" / "fold_done.json").unlink()
    assert kfold_main(base + ["--fold", "1"]) == 0
    assert "fold(s) 1 done" in capsys.readouterr().out
    assert kfold_main(base + ["--fold", "2"]) == 0  # resumes: nothing to train, best.pth restored, record written
    out = capsys.readouterr().out
    assert "fold(s) 1, 2 done" in out and "still to train: 0 " in out and not (work / "oof").exists()
    assert (work / "fold2" / "metrics.jsonl").read_text() == metrics
    summary = json.loads((work / "fold2" / "summary.json").read_text())
    best = torch.load(summary["best_checkpoint"], weights_only=True)
    last = torch.load(work / "fold2" / "checkpoints" / "last.pth", weights_only=True)
    assert best["iter"] == last["iter"] == summary["best_iter"]
    assert all(torch.equal(best["model"][k], v) for k, v in last["model"].items())
    assert kfold_main(base + ["--fold", "0"]) == 0
    assert (work / "oof" / "oof.json").is_file()


def test_settings_that_do_not_change_a_fold_and_a_moved_folder_keep_finished_folds(kfold_run, tmp_path, capsys):
    config, work, args = kfold_run
    before = (work / "fold0" / "metrics.jsonl").read_text()
    moved = tmp_path / "elsewhere"
    work.rename(moved)  # fold configs and summaries hold absolute paths of the old place
    try:
        rerun = [str(config), "--folds", "2", "--work-dir", str(moved), "--no-progress", "--device", "auto",
                 "--set", "data.num_workers=1", "data.test.ann=None", "train.log_interval=5"]
        assert kfold_main(rerun) == 0
    finally:
        moved.rename(work)
    out = capsys.readouterr().out
    assert (work / "fold0" / "metrics.jsonl").read_text() == before
    assert "out-of-fold metrics over 8 held-out images" in out
    assert "--input TEST_IMAGES" in out  # data.test.ann=None: no path to join, a placeholder in the command


def test_oof_with_the_last_checkpoint_and_what_the_report_says(kfold_run, capsys):
    config, work, args = kfold_run
    assert kfold_main(args + ["--oof-checkpoint", "last"]) == 0  # after the tests reading the best.pth oof.json
    out = capsys.readouterr().out
    record = json.loads((work / "oof" / "oof.json").read_text())
    assert "by its last.pth" in out and f"{work}/fold0/checkpoints/last.pth" in out
    assert record["checkpoint"] == "last"
    for fold in record["folds"]:  # the last weights' held-out mIoU is the run's last validation
        lines = (work / f"fold{fold['fold']}" / "metrics.jsonl").read_text().splitlines()
        assert fold["mIoU"] == pytest.approx(json.loads(lines[-1])["mIoU"], abs=1e-12)
    assert kfold_main(args + ["--oof-checkpoint", "final"]) == 2
    assert "--oof-checkpoint 'final': use one of best, last" in capsys.readouterr().err


def test_a_changed_split_or_bad_fold_is_refused(kfold_run, tmp_path, capsys):
    config, work, args = kfold_run
    assert kfold_main(args + ["--seed", "3"]) == 2
    assert "split differently (seed=0 -> 3)" in capsys.readouterr().err
    assert kfold_main(args + ["--set", "optimizer.lr=0.01", "train.seed=7"]) == 2
    err = capsys.readouterr().err
    assert "finished with other settings (optimizer.lr: 0.002 -> 0.01; train.seed: 42 -> 7)" in err
    one_group = [str(config), "--folds", "2", "--work-dir", str(tmp_path / "g"), "--group-by", "width"]
    assert kfold_main(one_group) == 2  # every tiny image is 64 px wide: one group
    assert "--group-by width: all 8 images share one value" in capsys.readouterr().err
    assert kfold_main([str(config), "--folds", "2", "--fold", "2"]) == 2
    assert "--fold 2: folds are numbered 0..1" in capsys.readouterr().err
    assert kfold_main([str(config), "--folds", "1"]) == 2
    assert "need at least 2 folds" in capsys.readouterr().err
