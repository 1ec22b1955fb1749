"""End to end on the tiny demo set: what a training run leaves in TensorBoard, then tools/test.py on its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hp_metadata

import segkit.cli.test as test_cli
from segkit.cli.train import main as train_main
from segkit.data.coco import CocoSegDataset

REPO = Path(__file__).resolve().parents[2]

# A shallow Unet (3 encoder stages) keeps the two epochs to seconds; the evaluation path is the same.
CONFIG = """
_base_ = ["{repo}/configs/demo_unet.py"]
data = dict(root="{root}", num_workers=0, batch_size=4, val_batch_size=3, train=dict(pipeline=[]))
model = dict(encoder_depth=3, decoder_channels=(16, 8, 8))
scheduler = dict(warmup_iters=1)
train = dict(epochs=2, log_interval=1)
"""


@pytest.fixture(scope="module")
def run(tiny_demo, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("eval_run")
    config = folder / "tiny_eval.py"
    config.write_text(CONFIG.format(repo=REPO, root=tiny_demo))
    work_dir = folder / "run"
    assert train_main([str(config), "--work-dir", str(work_dir), "--no-progress", "--device", "cpu"]) == 0
    return config, work_dir


@pytest.fixture(scope="module")
def val_classes(tiny_demo) -> list[str]:
    dataset = CocoSegDataset(tiny_demo, "val.json", "images")
    present = set().union(*(np.unique(dataset[i]["mask"].numpy()).tolist() for i in range(len(dataset))))
    return [dataset.classes[c] for c in sorted(present)]


def test_tensorboard_holds_scalars_figures_sample_panels_class_panels_and_hparams(run, val_classes):
    _, work_dir = run
    events = EventAccumulator(str(work_dir / "tb"), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    for tag in ("val/mIoU", "val/mAcc", "val/aAcc", "val/mDice", "val/fwIoU", "val/IoU/Background",
                "val/Acc/Background", "val/Dice/Background", "val/Precision/Background"):
        assert tag in scalars and [e.step for e in events.Scalars(tag)] == [2, 4], tag

    images = events.Tags()["images"]
    for tag in ("val/confusion_matrix", "val/per_class_iou"):
        assert len(events.Images(tag)) == 2, tag
    fixed = [t for t in images if t.startswith("val/samples/fixed/")]
    worst = [t for t in images if t.startswith("val/samples/worst/")]
    assert fixed and sorted(worst) == [f"val/samples/worst/{k}" for k in range(1, 5)]  # 4 val images, k = 4
    class_tags = sorted(t for t in images if t.startswith("val/class/"))
    assert class_tags == sorted(f"val/class/{name}" for name in val_classes)  # exactly one per class in val
    for tag in fixed + worst + class_tags:
        shown = events.Images(tag)
        assert [e.step for e in shown] == [2, 4] and shown[-1].height >= 256, tag  # 64 px enlarged

    records = [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]
    assert events.Scalars("val/mIoU")[-1].value == pytest.approx(records[-1]["mIoU"])
    hparams = events.PluginTagToContent(hp_metadata.PLUGIN_NAME)
    start = hp_metadata.parse_session_start_info_plugin_data(hparams[hp_metadata.SESSION_START_INFO_TAG])
    assert start.hparams["model.type"].string_value == "Unet"
    assert start.hparams["optimizer.lr"].number_value == pytest.approx(2e-3)
    best = max(r["mIoU"] for r in records)
    assert events.Scalars("hparams/best_mIoU")[-1].value == pytest.approx(best)


def test_test_cli_reproduces_best_writes_json_and_one_panel_per_image(run, tiny_demo, tmp_path, capsys):
    config, work_dir = run
    out, show = tmp_path / "metrics.json", tmp_path / "panels"
    argv = [str(config), str(work_dir / "checkpoints" / "best.pth"), "--no-progress"]
    assert test_cli.main([*argv, "--out", str(out), "--show-dir", str(show), "--boundary-iou"]) == 0
    printed = capsys.readouterr().out
    assert "BoundaryIoU" in printed and "4 panels written" in printed

    tested = json.loads(out.read_text())
    records = [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]
    best = max(records, key=lambda r: r["mIoU"])
    assert tested["mIoU"] == best["mIoU"] and tested["IoU"] == best["IoU"]
    assert 0.0 <= tested["mBoundaryIoU"] <= 1.0 and tested["tta"] == "none"
    assert np.array(tested["confusion_matrix"]).sum() == 4 * 64 * 64

    val = json.loads((tiny_demo / "val.json").read_text())["images"]
    pngs = sorted(show.rglob("*.png"))
    assert [p.relative_to(show).with_suffix("").as_posix() for p in pngs] == sorted(
        str(Path(img["file_name"]).with_suffix("").as_posix()) for img in val)
    picture = cv2.imread(str(pngs[0]))
    assert picture is not None and picture.shape[0] >= 256 and picture.shape[1] >= 5 * 256

    flip_out = tmp_path / "flip.json"
    assert test_cli.main([*argv, "--tta", "flip", "--out", str(flip_out)]) == 0
    flipped = json.loads(flip_out.read_text())
    assert "TTA flip" in capsys.readouterr().out
    assert flipped["tta"] == "flip" and 0.0 <= flipped["mIoU"] <= 1.0
    assert np.array(flipped["confusion_matrix"]).sum() == 4 * 64 * 64
    assert abs(flipped["aAcc"] - tested["aAcc"]) < 0.25  # the same model, seen twice, not a different one
