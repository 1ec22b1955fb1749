from pathlib import Path

import pytest
import torch

from segkit.config import load_config
from segkit.models.builder import build_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name, model_type", [
    ("hrnet_w48_ocr", "HRNetOCR"), ("deeplabv3plus_r101", "DeepLabV3Plus"),
    ("demo_hrnet_ocr", "HRNetOCR"), ("demo_deeplabv3plus", "DeepLabV3Plus"),
    ("segformer_b2", "Segformer"), ("upernet_convnext_t", "UPerNet"), ("dpt_vit_s", "DPT"),
])
def test_model_configs_load(name, model_type):
    cfg = load_config(CONFIGS / f"{name}.py")
    assert cfg.model.type == model_type
    if name.startswith("demo_"):
        assert cfg.model.encoder_weights is None and cfg.data.root == "data/demo"
    else:
        assert cfg.model.encoder_weights == "imagenet" and cfg.data.root == "data/trash"


@pytest.mark.parametrize("name", ["demo_hrnet_ocr", "demo_deeplabv3plus"])
def test_demo_models_build_offline_and_run(name):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a few shared cores: fewer threads are faster here
    try:
        model = build_model(load_config(CONFIGS / f"{name}.py").model, num_classes=12).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 64, 96)).shape == (1, 12, 64, 96)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["segformer_b2", "upernet_convnext_t", "dpt_vit_s"])
def test_transformer_recipes_state_their_optimiser_and_train_every_part(name):
    """AdamW, a lower encoder LR and AMP on the trash recipe; the model builds (no download) and gets an
    encoder and a decoder parameter group."""
    from segkit.engine.optim import build_optimizer

    cfg = load_config(CONFIGS / f"{name}.py")
    assert cfg.optimizer.type == "AdamW" and cfg.optimizer.encoder_lr_mult < 1 and cfg.train.amp is True
    assert cfg.data.batch_size == 8 and cfg.train.epochs == 40
    text = (CONFIGS / f"{name}.py").read_text()
    assert "encoder_lr_mult" in text.split("_base_")[0]  # the comment says why
    model = build_model({**cfg.model, "encoder_weights": None}, num_classes=12)
    groups = build_optimizer(cfg.optimizer, model).param_groups
    assert [g["lr"] for g in groups] == [cfg.optimizer.lr * cfg.optimizer.encoder_lr_mult, cfg.optimizer.lr]
