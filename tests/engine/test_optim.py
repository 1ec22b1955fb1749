import math

import pytest
import torch

import segkit.engine.optim  # noqa: F401
from segkit.engine.optim import build_optimizer, report_metric
from segkit.errors import SegkitError
from segkit.registry import OPTIMIZERS, SCHEDULERS


def lrs_of(cfg: dict, steps: int, total: int = 100, per_epoch: int = 10, lr: float = 1.0, metrics=()) -> list[float]:
    opt = OPTIMIZERS.build({"type": "SGD", "lr": lr}, params=[torch.nn.Parameter(torch.zeros(1))])
    sched = SCHEDULERS.build(cfg, optimizer=opt, total_iters=total, iters_per_epoch=per_epoch)
    out = []
    for step in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        if step in dict(metrics):
            report_metric(sched, dict(metrics)[step])
    return out


def test_cosine_warmup_then_decay_to_floor():
    lrs = lrs_of({"type": "CosineWarmup", "warmup_iters": 10, "min_lr_ratio": 0.1}, 101)
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0) and lrs[10] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[100] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_poly_step_onecycle_and_restarts():
    poly = lrs_of({"type": "Poly", "power": 2.0}, 101)
    assert poly[50] == pytest.approx(0.25) and poly[100] == pytest.approx(0.0)
    step = lrs_of({"type": "Step", "milestones": [3, 6], "gamma": 0.5}, 70)
    assert (step[29], step[30], step[60]) == pytest.approx((1.0, 0.5, 0.25))
    one = lrs_of({"type": "OneCycle", "div_factor": 10, "final_div_factor": 100}, 101)
    assert one[0] == pytest.approx(0.1) and max(one) == pytest.approx(1.0) and one[100] == pytest.approx(1e-3)
    assert one.index(max(one)) == 30
    restarts = lrs_of({"type": "CosineRestarts", "period_epochs": 2}, 45)
    assert restarts[0] == restarts[20] == restarts[40] == pytest.approx(1.0) and restarts[19] < 0.01


def test_reduce_on_plateau_reacts_to_validation():
    cfg = {"type": "ReduceOnPlateau", "factor": 0.5, "patience": 1}
    lrs = lrs_of(cfg, 40, metrics=[(9, 0.5), (19, 0.5), (29, 0.6)])
    # baseline at 9, one stagnant validation at 19 drops it (patience=1), an improvement at 29 keeps it.
    assert lrs[15] == pytest.approx(1.0) and lrs[25] == pytest.approx(0.5) and lrs[35] == pytest.approx(0.5)


@pytest.mark.parametrize("patience", [0, -1, 1.5])
def test_plateau_patience_below_one_is_refused(patience):
    from segkit.engine.optim import ReduceOnPlateau

    with pytest.raises(SegkitError, match=f"scheduler.patience={patience!r} must be an integer >= 1"):
        ReduceOnPlateau(torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1), 10, 5, patience=patience)


def test_encoder_lr_multiplier_makes_parameter_groups_and_survives_schedules():
    from segkit.models.builder import build_model

    model = build_model({"type": "Unet", "encoder_name": "resnet18", "encoder_weights": None}, num_classes=3)
    opt = build_optimizer({"type": "AdamW", "lr": 1e-3, "encoder_lr_mult": 0.1}, model)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-4, 1e-3])
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == sum(p.numel() for p in model.parameters())
    sched = SCHEDULERS.build({"type": "CosineWarmup", "warmup_iters": 4}, optimizer=opt, total_iters=10,
                             iters_per_epoch=5)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] / opt.param_groups[1]["lr"] == pytest.approx(0.1)


@pytest.mark.parametrize("name", ["adamp", "madgrad", "lookahead_adamw"])
def test_timm_optimizers_by_name(name):
    opt = build_optimizer({"type": "Timm", "opt": name, "lr": 1e-3}, torch.nn.Linear(2, 2))
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_unknown_timm_optimizer_is_named():
    with pytest.raises(SegkitError, match="optimizer.opt='adamq' is not a timm optimizer; did you mean"):
        build_optimizer({"type": "Timm", "opt": "adamq", "lr": 1e-3}, torch.nn.Linear(2, 2))


def test_plateau_counts_each_validation_once_with_two_parameter_groups(tiny_config, tmp_path):
    """``optimizer.encoder_lr_mult`` makes two groups; patience must still count validations, not reports."""
    from segkit.config import load_config
    from segkit.engine.hooks import PlateauHook
    from segkit.engine.trainer import Trainer

    cfg = load_config(tiny_config(epochs=1), [
        "optimizer.encoder_lr_mult=0.1",
        "scheduler={'_delete_': True, 'type': 'ReduceOnPlateau', 'factor': 0.5, 'patience': 2}"])
    trainer = Trainer(cfg, tmp_path / "w", torch.device("cpu"), progress=False)
    assert len(trainer.optimizer.param_groups) == 2
    hook = next(h for h in trainer.hooks if isinstance(h, PlateauHook))
    lrs = []
    for miou in (0.4, 0.5, 0.5, 0.5, 0.5, 0.5):  # improvements, then stagnant validations
        trainer.last_metrics = {"mIoU": miou}
        hook.after_epoch(trainer)
        hook.after_epoch(trainer)  # the same validation seen again (another after_epoch without one): no report
        trainer.optimizer.step()
        trainer.scheduler.step()
        lrs.append([group["lr"] for group in trainer.optimizer.param_groups])
    base = cfg.optimizer.lr
    # patience=2: the second stagnant validation halves both groups (reported twice per validation, as before
    # the fix, the first one would); the count restarts after a drop.
    assert [decoder for _, decoder in lrs] == pytest.approx([base, base, base, base / 2, base / 2, base / 4])
    assert all(encoder == pytest.approx(0.1 * decoder) for encoder, decoder in lrs)
