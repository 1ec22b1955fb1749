"""``tools/export.py`` end to end on a tiny checkpoint: check, metadata, the .onnx through test/infer_tta,
the plain-onnxruntime example of docs/deploy.md, int8, and one-line errors for bad inputs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import segkit.cli.export as export_cli
import segkit.cli.infer_tta as infer_cli
import segkit.cli.test as test_cli
from segkit.config import load_config
from segkit.data.loader import build_dataset
from segkit.engine.checkpoint import save_checkpoint
from segkit.errors import SegkitError
from segkit.inference.checkpoints import inference_network

pytest.importorskip("onnxruntime")
REPO = Path(__file__).resolve().parents[2]
CONFIG = """
_base_ = ["{repo}/configs/demo_unet.py"]
data = dict(root="{root}", num_workers=0, val_batch_size=2, train=dict(pipeline=[]))
model = dict(decoder_channels=(16, 8, 8, 8, 8))
"""


def _checkpoint(folder: Path, config: Path, classes: list[str] | None = None, seed: int = 0) -> Path:
    cfg = load_config(config)
    classes = classes or build_dataset(cfg, "val").classes
    torch.manual_seed(seed)
    model = inference_network(cfg.model, len(classes))
    path = folder / f"seed{seed}_{len(classes)}.pth"
    save_checkpoint({"model": model.state_dict(), "classes": list(classes), "config": cfg.to_dict()}, path)
    return path


@pytest.fixture(scope="module")
def exported(tiny_demo, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("export")
    config = folder / "tiny.py"
    config.write_text(CONFIG.format(repo=REPO, root=tiny_demo))
    ckpt = _checkpoint(folder, config)
    onnx_path = folder / "model.onnx"
    assert export_cli.main([str(ckpt), "--out", str(onnx_path), "--int8", "--calib", "4"]) == 0
    return {"config": config, "ckpt": ckpt, "onnx": onnx_path, "int8": folder / "model.int8.onnx",
            "folder": folder}


def _metadata(path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_export_writes_checked_model_with_metadata(exported):
    meta = _metadata(exported["onnx"])
    assert json.loads(meta["classes"])[0] == "Background"
    assert len(json.loads(meta["mean"])) == 3 and int(meta["stride_multiple"]) == 32
    assert set(meta) >= {"segkit_version", "config_hash", "checkpoint_sha256", "std", "config"}
    assert exported["int8"].is_file()


def test_failed_check_names_size_and_difference(exported, monkeypatch):
    from segkit.deploy import onnx_export

    loaded = onnx_export.load_for_export(exported["ckpt"])
    monkeypatch.setitem(onnx_export.TOLERANCE, "fp32", 0.0)
    with pytest.raises(SegkitError, match=r"ONNX check failed at 256x256: max \|prob difference\| .* \(limit 0\)"):
        onnx_export.check_export(loaded.model, exported["onnx"])


def test_onnx_predicts_like_the_checkpoint_with_flip_tta_and_submission(exported, tiny_demo, tmp_path):
    outputs = {}
    for kind in ("ckpt", "onnx"):
        out = tmp_path / kind
        assert infer_cli.main([str(exported[kind]), "--input", str(tiny_demo / "test.json"), "--tta", "flip",
                               "--out-dir", str(out), "--submission", str(out / "sub.csv"), "--save-png"]) == 0
        outputs[kind] = out
    masks = sorted(p.relative_to(outputs["ckpt"]) for p in (outputs["ckpt"] / "masks").rglob("*.png"))
    assert masks
    for mask in masks:
        a, b = (np.asarray(Image.open(o / mask)) for o in outputs.values())
        assert (a == b).mean() >= 0.9999
    assert (outputs["onnx"] / "sub.csv").read_text() == (outputs["ckpt"] / "sub.csv").read_text()


def test_test_py_accepts_onnx_and_int8(exported, tmp_path):
    metrics = {}
    for kind in ("ckpt", "onnx", "int8"):
        out = tmp_path / f"{kind}.json"
        assert test_cli.main([str(exported["config"]), str(exported[kind]), "--out", str(out), "--no-progress"]) == 0
        metrics[kind] = json.loads(out.read_text())
    assert metrics["onnx"]["mIoU"] == pytest.approx(metrics["ckpt"]["mIoU"], abs=1e-6)


def test_plain_onnxruntime_example_in_docs_matches_pytorch(exported, tmp_path):
    doc = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    code = re.search(r"## Predicting without segkit.*?```python\n(.*?)```", doc, re.S).group(1)
    script = tmp_path / "predict.py"
    script.write_text(code)
    image = np.random.default_rng(0).integers(0, 256, (97, 131, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "image.png")
    assert "segkit" not in code
    env = {"PATH": "/usr/bin:/bin"}  # no PYTHONPATH
    subprocess.run([sys.executable, "-I", str(script), str(exported["onnx"]), str(tmp_path / "image.png"),
                    str(tmp_path / "probs.npy")], check=True, env=env, cwd=tmp_path, capture_output=True)
    from segkit.deploy.onnx_export import load_for_export

    loaded = load_for_export(exported["ckpt"])
    meta = loaded.metadata
    mean, std = (torch.tensor(json.loads(meta[k])).view(1, 3, 1, 1) for k in ("mean", "std"))
    x = (torch.from_numpy(image).permute(2, 0, 1)[None].float() - mean) / std
    with torch.no_grad():
        reference = loaded.model(x).softmax(1)[0].numpy()
    assert np.abs(np.load(tmp_path / "probs.npy") - reference).max() <= 1e-4


def _fails(main, argv, capsys, pattern: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(pattern, err), err


def test_not_a_checkpoint(tmp_path, capsys):
    bogus = tmp_path / "weights.pth"  # a torch file, but only a state dict: no stored config or classes
    torch.save({"conv.weight": torch.zeros(1)}, bogus)
    _fails(export_cli.main, [str(bogus), "--out", str(tmp_path / "m.onnx")], capsys,
           "is a plain state_dict .*not a segkit checkpoint")
    assert not (tmp_path / "m.onnx").exists()


def test_unwritable_out(exported, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails(export_cli.main, [str(exported["ckpt"]), "--out", str(blocker / "m.onnx")], capsys, "--out .*cannot")
    _fails(export_cli.main, [str(exported["ckpt"]), "--out", str(tmp_path / "m.txt")], capsys, "ending in .onnx")


def test_onnx_with_other_classes_in_an_ensemble(exported, tiny_demo, tmp_path, capsys):
    classes = json.loads(_metadata(exported["onnx"])["classes"])
    other = _checkpoint(tmp_path, exported["config"], classes=[*classes[:-1], "Other"], seed=1)
    other_onnx = tmp_path / "other.onnx"
    assert export_cli.main([str(other), "--out", str(other_onnx), "--no-check"]) == 0
    argv = [str(exported["ckpt"]), str(other_onnx), "--input", str(tiny_demo / "test.json"),
            "--out-dir", str(tmp_path / "out"), "--save-png"]
    _fails(infer_cli.main, argv, capsys, r"other\.onnx: classes .* differ")


def test_corrupt_onnx(exported, tiny_demo, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(exported["onnx"].read_bytes()[:5000])
    argv = [str(corrupt), "--input", str(tiny_demo / "test.json"), "--out-dir", str(tmp_path / "o"), "--save-png"]
    _fails(infer_cli.main, argv, capsys, "not a loadable ONNX model")


def test_failed_calibration_writes_nothing(exported, tmp_path, capsys):
    copy = tmp_path / "m.onnx"
    copy.write_bytes(exported["onnx"].read_bytes())
    from segkit.deploy.quantize import quantize_int8

    nan = np.full((1, 3, 64, 64), np.nan, np.float32)
    with pytest.raises(SegkitError, match="int8 calibration of .* failed"):
        quantize_int8(copy, [nan])
    assert not (tmp_path / "m.int8.onnx").exists() and len(list(tmp_path.iterdir())) == 1
    capsys.readouterr()  # onnxruntime's warnings about the NaN calibration
    _fails(export_cli.main, [str(exported["ckpt"]), "--out", str(tmp_path / "n.onnx"), "--no-check", "--int8",
                             "--calib", "0"], capsys, "--calib 0: give a positive number")
    assert not (tmp_path / "n.onnx").exists() and not (tmp_path / "n.int8.onnx").exists()


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    from segkit.deploy.runtime import require

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(SegkitError, match=r"pip install 'segkit\[deploy\]'"):
        require("onnxruntime")


def test_fp16_export_passes_its_stated_tolerance(exported, tmp_path, capsys):
    out = tmp_path / "half.onnx"
    assert export_cli.main([str(exported["ckpt"]), "--out", str(out), "--fp16"]) == 0
    assert _metadata(out)["precision"] == "fp16" and "check 97x131" in capsys.readouterr().out
