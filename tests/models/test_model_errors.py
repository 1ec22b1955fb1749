"""A model that cannot work is one line naming what does, and exit 2 from tools/train.py."""

import pytest

from segkit.cli.train import main as train_main
from segkit.errors import SegkitError
from segkit.models.builder import build_model


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segkit: error: "), err
    return err[0]


@pytest.mark.parametrize("model, message", [
    ({"type": "DPT", "encoder_name": "resnet34"},
     "model.encoder_name='resnet34': DPT needs a 'tu-' encoder; it takes plain timm ViTs as 'tu-' + a timm "
     "name (tu-vit_*"),
    ({"type": "DPT", "encoder_name": "tu-resnet18"},
     "cannot build DPT with encoder 'tu-resnet18' (ResNet.__init__() got an unexpected keyword argument "
     "'dynamic_img_size'); DPT takes plain timm ViTs as 'tu-' + a timm name"),
    ({"type": "DPT", "encoder_name": "tu-resnet18", "dynamic_img_size": None},
     "model.encoder_name: DPT needs a plain ViT whose features share one stride"),
    ({"type": "DPT", "encoder_name": "tu-vit_tiny_patch16_224", "dynamic_img_size": False},
     "model.dynamic_img_size=False: this DPT encoder then takes only 224x224 inputs"),
    ({"type": "UnetPlusPlus", "encoder_name": "mit_b0"},
     "UnetPlusPlus does not take mit* encoders; it takes smp CNN encoders"),
    ({"type": "Unet", "encoder_name": "tu-vit_tiny_patch16_224"},
     "cannot build Unet with encoder 'tu-vit_tiny_patch16_224' (Unsupported model downsampling pattern.); Unet "
     "takes any smp encoder"),
    ({"type": "Segformr", "encoder_name": "mit_b0"},
     "model.type='Segformr' is not a registered model; did you mean 'Segformer'? (registered: DPT, "),
])
def test_a_model_that_cannot_work_exits_2_with_one_line(tiny_config, tmp_path, capsys, model, message):
    model = {"_delete_": True, "encoder_weights": None, **model}
    code = train_main([str(tiny_config(epochs=1)), "--work-dir", str(tmp_path / "w"), "--no-progress",
                       "--set", f"model={model!r}"])
    assert code == 2
    assert message in one_error_line(capsys)


def test_batch_of_one_on_a_pooled_batchnorm_exits_2_with_one_line(tiny_config, tmp_path, capsys):
    model = {"_delete_": True, "type": "UPerNet", "encoder_name": "resnet18", "encoder_weights": None,
             "decoder_channels": 16}
    code = train_main([str(tiny_config(epochs=1)), "--work-dir", str(tmp_path / "w"), "--no-progress",
                       "--set", f"model={model!r}", "data.batch_size=1"])
    assert code == 2
    assert "UPerNet cannot train on a batch of 1" in one_error_line(capsys)


def test_smp_keyword_typos_are_still_named():
    with pytest.raises(SegkitError, match="model \\(Linknet\\): unknown argument 'decoder_chanels'"):
        build_model({"type": "Linknet", "encoder_name": "resnet18", "encoder_weights": None,
                     "decoder_chanels": 8}, 3)
