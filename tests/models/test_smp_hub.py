"""segkit <-> plain smp: a checkpoint exported as a save_pretrained folder predicts the same in smp and back
in segkit (SMPPretrained), and what cannot be exported is one line."""

import json

import pytest
import segmentation_models_pytorch as smp
import torch

from segkit.engine.checkpoint import save_checkpoint
from segkit.errors import SegkitError
from segkit.models.builder import build_model
from segkit.models.smp_hub import export_smp_folder
from tests.models.tiny_models import tiny_cfg

CLASSES = ["Background", "Paper", "Plastic"]
MEAN, STD = [120.0, 110.0, 100.0], [60.0, 58.0, 57.0]


def segkit_checkpoint(tmp_path, name):
    torch.manual_seed(0)
    cfg = tiny_cfg(name)
    model = build_model(cfg, num_classes=len(CLASSES))
    with torch.no_grad():  # BatchNorm statistics that are not the defaults, so eval mode is really compared
        model.train()(torch.randn(2, 3, 64, 64))
    path = tmp_path / "best.pth"
    save_checkpoint({"model": model.state_dict(), "classes": CLASSES,
                     "config": {"model": cfg, "data": {"mean": MEAN, "std": STD, "root": "data/trash"}}}, path)
    return model.eval(), path


@pytest.mark.parametrize("name", ["Segformer", "PSPNet", "DPT"])
def test_round_trip_predicts_identically_in_smp_and_in_segkit(tmp_path, name):
    model, checkpoint = segkit_checkpoint(tmp_path, name)
    folder = export_smp_folder(checkpoint, tmp_path / "exported")
    assert {p.name for p in folder.iterdir()} >= {"config.json", "model.safetensors", "README.md"}
    extra = json.loads((folder / "config.json").read_text())["_segkit"]
    assert extra["classes"] == CLASSES and extra["mean"] == MEAN and extra["std"] == STD
    assert "Plastic" in (folder / "README.md").read_text()

    plain = smp.from_pretrained(str(folder)).eval()
    assert type(plain).__name__ == name
    image = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(plain(image), model(image), rtol=0, atol=1e-6)

    again = build_model({"type": "SMPPretrained", "path": str(folder)}, num_classes=len(CLASSES)).eval()
    odd = torch.randn(2, 3, 45, 70)
    with torch.no_grad():
        torch.testing.assert_close(again(odd), model(odd), rtol=0, atol=1e-6)
    assert again.multiple == model.multiple and again.min_size == model.min_size


def test_fine_tuning_on_other_classes_keeps_all_but_the_head(tmp_path):
    folder = tmp_path / "linknet"
    plain = smp.Linknet(encoder_name="resnet18", encoder_weights=None, classes=5)
    plain.save_pretrained(folder)
    model = build_model({"type": "SMPPretrained", "path": str(folder)}, num_classes=3)
    saved, loaded = plain.state_dict(), model.net.state_dict()
    assert all(torch.equal(saved[k], loaded[k]) for k in loaded if not k.startswith("segmentation_head."))
    assert loaded["segmentation_head.0.weight"].shape[0] == 3


def test_what_cannot_be_exported_or_loaded_is_one_line(tmp_path):
    hrnet = {"type": "HRNetV2", "backbone": "hrnet_w18_small", "encoder_weights": None}
    save_checkpoint({"model": {}, "classes": CLASSES, "config": {"model": hrnet}}, tmp_path / "hrnet.pth")
    with pytest.raises(SegkitError, match=r"model.type='HRNetV2' is not an smp architecture; --format smp exports "
                                          r"DPT, .*Unet, UnetPlusPlus and SMPPretrained"):
        export_smp_folder(tmp_path / "hrnet.pth", tmp_path / "out")
    _, checkpoint = segkit_checkpoint(tmp_path, "Linknet")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(SegkitError, match="--out .*full exists and is not an empty folder"):
        export_smp_folder(checkpoint, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    with pytest.raises(SegkitError, match="no readable config.json"):
        build_model({"type": "SMPPretrained", "path": str(tmp_path)}, num_classes=3)
    (tmp_path / "config.json").write_text(json.dumps({"_model_class": "Mask2Former"}))
    with pytest.raises(SegkitError, match="_model_class='Mask2Former'; segkit loads DPT, "):
        build_model({"type": "SMPPretrained", "path": str(tmp_path)}, num_classes=3)


def test_a_run_started_from_a_folder_exports_again(tmp_path):
    """SMPPretrained checkpoints (fine-tuned from a plain smp folder) go back to plain smp too."""
    folder = tmp_path / "plain"
    smp.Linknet(encoder_name="resnet18", encoder_weights=None, classes=5).save_pretrained(folder)
    cfg = {"type": "SMPPretrained", "path": str(folder)}
    model = build_model(cfg, num_classes=len(CLASSES)).eval()
    save_checkpoint({"model": model.state_dict(), "classes": CLASSES, "config": {"model": cfg}},
                    tmp_path / "tuned.pth")
    plain = smp.from_pretrained(str(export_smp_folder(tmp_path / "tuned.pth", tmp_path / "again"))).eval()
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(plain(image), model(image), rtol=0, atol=1e-6)


def test_export_cli_writes_the_smp_folder(tmp_path, capsys):
    from segkit.cli.export import main as export_main

    model, checkpoint = segkit_checkpoint(tmp_path, "Unet")
    assert export_main([str(checkpoint), "--format", "smp", "--out", str(tmp_path / "smp")]) == 0
    assert "smp folder written to" in capsys.readouterr().out
    plain = smp.from_pretrained(str(tmp_path / "smp")).eval()
    image = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(plain(image), model(image), rtol=0, atol=1e-6)
    assert export_main([str(checkpoint), "--format", "smp", "--out", str(tmp_path / "smp")]) == 2  # not replaced
