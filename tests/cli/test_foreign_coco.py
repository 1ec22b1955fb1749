"""Training on a COCO export segkit did not write: the labelme fixture (skipped without ../shared)."""

import json
from pathlib import Path

import pytest

from segkit.cli.train import main as train_main

REPO = Path(__file__).resolve().parents[2]
LABELME = REPO.parent / "shared" / "data" / "labelme_coco"


@pytest.mark.skipif(not (LABELME / "annotations.json").is_file(), reason="../shared/data/labelme_coco is absent")
def test_demo_config_trains_on_the_labelme_export(tmp_path):
    work_dir = tmp_path / "labelme"
    overrides = [f"data.root={LABELME}", "data.img_dir=.", "data.train.ann=annotations.json",
                 "data.val.ann=annotations.json", "data.batch_size=3", "data.num_workers=0",
                 "model.decoder_channels=(32, 16, 16, 8, 8)", "train.epochs=1", f"data.cache_dir={tmp_path / 'c'}"]
    code = train_main([str(REPO / "configs" / "demo_unet.py"),
                       "--work-dir", str(work_dir), "--no-progress", "--device", "cpu", "--set", *overrides])
    assert code == 0
    record = json.loads((work_dir / "metrics.jsonl").read_text().splitlines()[-1])
    # labelme's id-0 "_background_" category is Background; the VOC classes of the three photos follow.
    assert list(record["IoU"])[0] == "Background" and "_background_" not in record["IoU"]
    assert (work_dir / "checkpoints" / "best.pth").is_file()
