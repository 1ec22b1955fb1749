import pytest
import torch

from segkit.errors import SegkitError
from segkit.models.builder import build_model


@pytest.mark.parametrize("cfg", [
    {"type": "Unet", "encoder_name": "resnet18", "encoder_weights": None, "decoder_channels": (32, 16, 16, 8, 8)},
    {"type": "EfficientUnet", "encoder_name": "efficientnet-b0", "encoder_weights": None},
    {"type": "DeepLabV3Plus", "encoder_name": "resnet18", "encoder_weights": None, "decoder_channels": 32},
])
def test_logits_at_input_resolution_for_any_size(cfg):
    model = build_model(cfg, num_classes=5).eval()
    with torch.no_grad():
        for size in [(64, 64), (45, 70)]:
            assert model(torch.randn(1, 3, *size)).shape == (1, 5, *size)


def test_num_classes_mismatch_and_bad_encoder_are_clear():
    with pytest.raises(SegkitError, match="model.num_classes=3 but the dataset has 7 classes"):
        build_model({"type": "Unet", "num_classes": 3, "encoder_weights": None}, num_classes=7)
    with pytest.raises(SegkitError, match="EfficientUnet needs an EfficientNet encoder"):
        build_model({"type": "EfficientUnet", "encoder_name": "resnet18", "encoder_weights": None}, 4)
    with pytest.raises(SegkitError, match="unknown argument 'encoder'"):
        build_model({"type": "Unet", "encoder": "resnet18", "encoder_weights": None}, 4)


def test_offline_weight_download_is_one_actionable_line(monkeypatch):
    import segmentation_models_pytorch as smp

    def offline(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(smp, "Unet", offline)
    with pytest.raises(SegkitError, match="could not download weights .*set model.encoder_weights=None"):
        build_model({"type": "Unet", "encoder_name": "resnet18", "encoder_weights": "imagenet"}, 4)
