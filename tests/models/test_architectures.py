import math

import pytest
import torch

from segkit.errors import SegkitError
from segkit.models.builder import build_model
from segkit.registry import MODELS
from tests.models.tiny_models import NEEDS_FOLDER, tiny_cfg


def test_hrnet_ocr_aux_output_in_training_only():
    model = build_model({**tiny_cfg("HRNetOCR"), "aux_weight": 0.25}, num_classes=3)
    assert model.aux_weight == 0.25
    out = model.train()(torch.randn(2, 3, 45, 70))
    assert set(out) == {"out", "aux"}
    assert out["out"].shape == out["aux"].shape == (2, 3, 45, 70)
    assert not torch.allclose(out["out"], out["aux"])
    with torch.no_grad():
        logits = model.eval()(torch.randn(1, 3, 45, 70))
    assert isinstance(logits, torch.Tensor) and logits.shape == (1, 3, 45, 70)


def test_hrnet_uses_the_four_raw_branches():
    net = build_model({**tiny_cfg("HRNetV2"), "backbone": "hrnet_w18"}, num_classes=3).net
    assert net.encoder.feature_info.reduction() == [4, 8, 16, 32]
    assert net.encoder.feature_info.channels() == [18, 36, 72, 144]
    assert net.head[0][0].in_channels == 18 + 36 + 72 + 144


def test_hrnet_offline_weights_and_bad_backbone_are_one_line(monkeypatch):
    import timm

    def offline(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    with pytest.raises(SegkitError, match="'hrnet_w64x' is not a timm HRNet; use one of .*hrnet_w48"):
        build_model({"type": "HRNetV2", "backbone": "hrnet_w64x", "encoder_weights": None}, 3)
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(SegkitError, match="download weights for 'hrnet_w18'.*set model.encoder_weights=None"):
        build_model({"type": "HRNetOCR", "backbone": "hrnet_w18", "encoder_weights": "imagenet"}, 3)


def test_smp_options_that_change_the_output_are_refused():
    with pytest.raises(SegkitError, match="model.activation='softmax2d'.*remove model.activation"):
        build_model({**tiny_cfg("FPN"), "activation": "softmax2d"}, 3)


@pytest.mark.cuda
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
@pytest.mark.parametrize("name", [n for n in MODELS.names() if n not in NEEDS_FOLDER])
def test_every_architecture_trains_a_few_cuda_steps_with_finite_losses(tiny_config, tmp_path, name, amp):
    """Trainer steps (fused AdamW, fp16 with GradScaler or bf16) on the tiny demo set."""
    from segkit.config import load_config
    from segkit.engine.trainer import Trainer

    model = {"_delete_": True, **tiny_cfg(name)}
    cfg = load_config(tiny_config(epochs=1), [f"model={model!r}", f"train.amp={amp!r}", "data.batch_size=2"])
    trainer = Trainer(cfg, tmp_path / "w", torch.device("cuda"), progress=False)
    trainer.net.train()
    losses = []
    for batch in list(trainer.train_loader)[:3]:
        trainer.run_step([batch])
        losses.append(trainer.step_loss)
        trainer.iter += 1
    assert all(math.isfinite(loss) for loss in losses), losses
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
