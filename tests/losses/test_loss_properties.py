"""Contracts every registered loss keeps: ignore pixels are inert, saturation and autocast stay finite."""

from pathlib import Path

import pytest
import torch

import segkit.losses  # noqa: F401  (registers losses)
from segkit.registry import LOSSES

CONFIGS = {
    "CrossEntropy": dict(type="CrossEntropy", class_weights=[1.0, 2.0, 0.5, 1.0], label_smoothing=0.1),
    "Focal": dict(type="Focal", gamma=2.0),
    "Focal-gamma-0.5": dict(type="Focal", gamma=0.5),
    "BoundaryFocal": dict(type="BoundaryFocal", gamma=2.0, boundary_weight=3.0, sigma=1.0),
    "Dice": dict(type="Dice"),
    "LovaszSoftmax": dict(type="LovaszSoftmax"),
    "LovaszSoftmax-per-image": dict(type="LovaszSoftmax", per_image=True),
    "Combo": dict(type="Combo", losses=[dict(type="CrossEntropy", weight=0.75),
                                        dict(type="Dice", weight=0.25)]),
}


def build(name: str):
    return LOSSES.build(CONFIGS[name], where="loss", ignore_index=255)


def batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 4, 8, 8, generator=generator) * 2
    target = torch.randint(0, 4, (2, 8, 8), generator=generator)
    target[:, 2:5, 3:7] = 255
    return logits, target


def loss_and_grad(loss_fn, logits, target):
    logits = logits.clone().requires_grad_()
    loss = loss_fn(logits, target)
    loss.backward()
    return loss.detach(), logits.grad


@pytest.mark.parametrize("name", CONFIGS)
def test_ignore_pixels_change_neither_loss_nor_gradients(name):
    loss_fn = build(name)
    logits, target = batch()
    ignored = (target == 255).unsqueeze(1).expand_as(logits)
    loss, grad = loss_and_grad(loss_fn, logits, target)
    assert loss.dim() == 0 and loss > 0
    assert torch.equal(grad[ignored], torch.zeros_like(grad[ignored]))
    changed = torch.where(ignored, torch.randn_like(logits) * 50, logits)
    loss2, grad2 = loss_and_grad(loss_fn, changed, target)
    assert torch.allclose(loss, loss2, atol=1e-6) and torch.allclose(grad, grad2, atol=1e-6)


@pytest.mark.parametrize("name", CONFIGS)
def test_saturated_logits_and_all_ignore_stay_finite(name):
    loss_fn = build(name)
    logits, target = batch(1)
    saturated = torch.sign(logits) * 1e4
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        loss, grad = loss_and_grad(loss_fn, saturated.to(dtype), target)
        assert torch.isfinite(loss) and torch.isfinite(grad.float()).all(), dtype
    loss, grad = loss_and_grad(loss_fn, logits, torch.full_like(target, 255))
    assert loss.item() == 0.0 and torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("name", CONFIGS)
def test_bf16_autocast_on_cpu_gives_finite_gradients(name):
    loss_fn = build(name)
    _, target = batch(2)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    images = torch.randn(2, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = conv(images) * 30
        assert logits.dtype == torch.bfloat16
        loss = loss_fn(logits, target)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in conv.parameters())


def test_trash_recipe_config_builds_boundary_focal():
    from segkit.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "unet_effb4.py")
    loss_fn = LOSSES.build(cfg.loss, where="loss", ignore_index=cfg.data.ignore_index)
    assert type(loss_fn).__name__ == "BoundaryFocal" and loss_fn.ignore_index == 255
