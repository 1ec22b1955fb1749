"""``data.ignore_index`` end to end: masks, transform borders, CutMix, copy-paste, losses, metrics, panels."""

import json

import pytest
import torch

import segkit.cli.test as test_cli
from segkit.cli.train import main as train_main
from segkit.config import load_config
from segkit.engine.trainer import Trainer

# Paper is ignored through the class mapping; the Affine's borders are ignore too. Every loss family runs.
EXTRA = """
data.update(ignore_index=254, classes={"Paper": 254, "Metal": 1, "Glass": 2, "Plastic": 3, "Styrofoam": 4,
                                       "Plastic bag": 5})
data["train"].update(pipeline=[dict(type="Affine", rotate=(20, 20), scale=0.8, p=1.0)], cutmix=dict(p=1.0),
                     copy_paste=dict(classes=["Metal"], p=1.0))
loss = dict(type="Combo", losses=[dict(type="BoundaryFocal"), dict(type="Dice", weight=0.5),
                                  dict(type="LovaszSoftmax", weight=0.5)])
"""


def test_a_custom_ignore_index_trains_and_evaluates(tiny_config, tmp_path):
    config = tiny_config(epochs=1, extra=EXTRA)
    trainer = Trainer(load_config(config), tmp_path / "probe", torch.device("cpu"), progress=False)
    assert trainer.classes == ["Background", "Metal", "Glass", "Plastic", "Styrofoam", "Plastic bag"]
    values = torch.cat([batch["mask"].flatten() for batch in trainer.train_loader]).unique().tolist()
    assert 254 in values and 255 not in values and set(values) <= {0, 1, 2, 3, 4, 5, 254}
    val_values = torch.cat([batch["mask"].flatten() for batch in trainer.val_loader]).unique().tolist()
    assert 254 in val_values and 255 not in val_values  # Paper objects in validation are ignored too

    work_dir = tmp_path / "run"
    assert train_main([str(config), "--work-dir", str(work_dir), "--no-progress", "--device", "cpu"]) == 0
    record = json.loads((work_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0.0 <= record["mIoU"] <= 1.0 and "Paper" not in record["IoU"]
    log = (work_dir / "train.log").read_text()
    assert "loss nan" not in log and "loss inf" not in log

    out = tmp_path / "tested.json"
    assert test_cli.main([str(config), str(work_dir / "checkpoints" / "best.pth"), "--out", str(out),
                          "--no-progress"]) == 0
    assert json.loads(out.read_text())["mIoU"] == pytest.approx(record["mIoU"], abs=1e-12)


def test_an_ignore_index_that_is_a_class_index_is_refused_in_one_line(tiny_config, tmp_path, capsys):
    config = tiny_config(epochs=1)
    assert train_main([str(config), "--work-dir", str(tmp_path / "w"), "--no-progress",
                       "--set", "data.ignore_index=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.ignore_index=3 is the index of class 'Glass'" in err[0]
    assert "choose a value from 7 to 255" in err[0]
    assert train_main([str(config), "--work-dir", str(tmp_path / "w"), "--set", "data.ignore_index=256"]) == 2
    assert "data.ignore_index must be an int in 0..255" in capsys.readouterr().err
