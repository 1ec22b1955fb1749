import math

import pytest
import torch

import segkit.engine.optim  # noqa: F401
from segkit.engine.optim import warmup_cosine_factor
from segkit.registry import OPTIMIZERS, SCHEDULERS


def test_warmup_then_cosine_to_floor():
    total, warm, floor = 100, 10, 0.1
    factors = [warmup_cosine_factor(s, total, warm, floor) for s in range(total + 1)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0)
    assert factors[55] == pytest.approx(floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert factors[100] == pytest.approx(floor)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))


def test_scheduler_steps_per_iteration_from_config():
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = OPTIMIZERS.build({"type": "AdamW", "lr": 1.0}, params=params)
    sched = SCHEDULERS.build({"type": "CosineWarmup", "warmup_iters": 2}, optimizer=opt, total_iters=4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.5, 1.0, 1.0, 0.5], abs=1e-9)  # the floor is reached at total_iters
