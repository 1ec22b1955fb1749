from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segkit.cli.browse_dataset import main
from segkit.config import load_config
from segkit.data.demo import make_demo_dataset
from segkit.data.loader import build_dataloader, build_dataset
from segkit.visualization.browse import pick_samples, render_sample
from segkit.visualization.palette import class_colors

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo_unet.py"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    make_demo_dataset(root, num_train=6, num_val=2, num_test=2, size=48, objects_per_image=(2, 4), seed=2,
                      progress=False)
    return root


def settings(root: Path) -> list[str]:
    return ["--set", f"data.root={root}", "data.cache=False", "data.num_workers=0", "data.batch_size=2"]


def test_writes_one_png_per_sample_and_a_grid_reproducibly(demo, tmp_path, capsys):
    for name in ("a", "b"):
        assert main([str(CONFIG), "--num", "3", "--out", str(tmp_path / name), "--no-progress", *settings(demo)]) == 0
    assert "4 PNGs written" in capsys.readouterr().out
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(files) == 4 and "grid.png" in files
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    picture = cv2.imread(str(tmp_path / "a" / files[1]))[:, :, ::-1]  # files[0] is grid.png
    assert picture.shape[1] > 3 * 512  # image | overlay | mask, plus the legend
    used = {tuple(c) for c in picture.reshape(-1, 3)}
    assert sum(tuple(c) in used for c in class_colors(7)[1:].tolist()) >= 2  # pure class colours in the mask panel


def test_samples_are_the_ones_the_training_loader_yields_first(demo):
    cfg = load_config(CONFIG, settings(demo)[1:])
    dataset = build_dataset(cfg, "train")
    loader = build_dataloader(cfg, "train", dataset, seed=cfg.train.seed)
    loader.sampler.set_epoch(1)
    batch = next(iter(loader))
    picked = pick_samples(dataset, 2, cfg.train.seed, epoch=1)
    assert [i for i, _ in picked] == batch["image_id"].tolist()  # demo image ids are the indices
    from segkit.data.sampling import SeededSamples

    again = [SeededSamples(dataset)[item]["image"] for item in picked]
    assert all(torch.equal(a, b) for a, b in zip(again, batch["image"]))


def test_ignore_pixels_are_hatched_and_listed():
    mask = np.zeros((40, 40), np.uint8)
    mask[:20] = 1
    mask[30:] = 255
    sample = {"image": torch.full((3, 40, 40), 90, dtype=torch.uint8), "mask": torch.from_numpy(mask)}
    picture = render_sample(sample, ["Background", "can"], size=40)
    overlay_panel = picture[-40:, 48:88]
    assert len({tuple(c) for c in overlay_panel[30:].reshape(-1, 3)}) == 2  # stripes
    assert (overlay_panel[25] == 90).all()  # Background shows the image


def test_test_split_without_masks_and_errors(demo, tmp_path, capsys):
    assert main([str(CONFIG), "--split", "test", "--num", "1", "--out", str(tmp_path), "--no-progress",
                 *settings(demo)]) == 0
    assert (tmp_path / "grid.png").is_file()
    capsys.readouterr()
    assert main([str(CONFIG), "--num", "0", "--out", str(tmp_path)]) == 2
    assert "--num 0" in capsys.readouterr().err
    assert main([str(CONFIG), "--indices", "99", "--out", str(tmp_path), *settings(demo)]) == 2
    assert "--indices 99: the split has 6 images" in capsys.readouterr().err
    assert main([str(tmp_path / "none.py"), "--out", str(tmp_path)]) == 2
    assert "config file not found" in capsys.readouterr().err
