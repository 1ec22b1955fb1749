"""EMAHook: the average's arithmetic, a constant number of foreach kernels per update, both state formats."""

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from segkit.engine.checkpoint import evaluated_weights
from segkit.engine.hooks import EMAHook


class Ops(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def net(layers: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)) for _ in range(layers)])


def test_first_update_copies_then_each_one_lerps_floats_and_copies_counters():
    model = net()
    hook = EMAHook(model, decay=0.75)
    assert all(not p.requires_grad for p in hook.model.parameters())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(torch.randn(2, 3, 4, 4))  # BatchNorm statistics and counters move too
    hook.after_step(None)
    for (name, ema), raw in zip(hook.model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(ema, raw), name
    before = {k: v.clone() for k, v in hook.model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    model(torch.randn(2, 3, 4, 4))
    hook.after_step(None)
    for name, raw in model.state_dict().items():
        ema = hook.model.state_dict()[name]
        if raw.is_floating_point():
            torch.testing.assert_close(ema, 0.75 * before[name] + 0.25 * raw)
        else:
            assert torch.equal(ema, raw), name  # num_batches_tracked follows the model
    assert hook.updates == 2


def test_an_update_is_a_constant_number_of_kernels_whatever_the_size_of_the_model():
    counts = []
    for layers in (2, 12):
        hook = EMAHook(net(layers), decay=0.9)
        hook.after_step(None)
        with Ops() as ops:
            hook.after_step(None)
        counts.append(ops.names)
    assert counts[0] == counts[1] == ["_foreach_lerp_", "_foreach_copy_"]  # no per-tensor loop, no read-back


def test_state_round_trip_and_the_old_averaged_model_format():
    model = net(2)
    hook = EMAHook(model, decay=0.9)
    hook.after_step(None)
    hook.after_step(None)
    state = hook.state_dict()
    assert state["updates"] == 2 and state["model"].keys() == model.state_dict().keys()
    again = EMAHook(net(2), decay=0.9)
    again.load_state_dict(state)
    assert again.updates == 2 and all(torch.equal(a, b) for a, b in zip(again._floats[0], hook._floats[0]))
    old = {"module." + k: v for k, v in state["model"].items()} | {"n_averaged": torch.tensor(2)}
    legacy = EMAHook(net(2), decay=0.9)
    legacy.load_state_dict({"model": old})
    assert legacy.updates == 2 and all(torch.equal(a, b) for a, b in zip(legacy._floats[0], hook._floats[0]))
    for ema in (state, {"model": old}):  # test.py evaluates the EMA weights of either format
        weights = evaluated_weights({"model": model.state_dict(), "hooks": {"EMAHook": ema}})
        assert weights.keys() == model.state_dict().keys()
        assert all(torch.equal(weights[k], v) for k, v in state["model"].items())
