"""EMA, SWA (with BatchNorm re-estimation on segkit batches) and early stopping, through real tiny runs."""

import json

import torch

import segkit.cli.test as test_cli
from segkit.cli.train import main as train_main
from segkit.data.batch import DeviceBatcher
from segkit.engine.checkpoint import load_checkpoint
from segkit.engine.hooks import update_bn


def run(config, work_dir) -> int:
    return train_main([str(config), "--work-dir", str(work_dir), "--no-progress", "--device", "cpu"])


def lines(work_dir) -> list[dict]:
    return [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]


def test_ema_weights_are_validated_saved_and_differ_from_the_raw_weights(tiny_config, tmp_path):
    work_dir = tmp_path / "ema"
    config = tiny_config(epochs=2, extra="train.update(ema=dict(decay=0.5))\n")
    assert run(config, work_dir) == 0
    out = tmp_path / "tested.json"
    assert test_cli.main([str(config), str(work_dir / "checkpoints" / "best.pth"), "--out", str(out),
                          "--no-progress", "--device", "cpu"]) == 0
    best = max(lines(work_dir), key=lambda r: r["mIoU"])
    assert json.loads(out.read_text())["mIoU"] == best["mIoU"]  # test.py evaluates the EMA weights too
    state = load_checkpoint(work_dir / "checkpoints" / "last.pth")
    ema = {k.removeprefix("module."): v for k, v in state["hooks"]["EMAHook"]["model"].items() if k != "n_averaged"}
    raw = state["model"]
    assert ema.keys() == raw.keys()
    assert any(not torch.equal(ema[k], raw[k]) for k in raw if raw[k].is_floating_point())


def test_swa_averages_re_estimates_batchnorm_validates_and_saves(tiny_config, tmp_path):
    work_dir = tmp_path / "swa"
    assert run(tiny_config(epochs=3, extra="train.update(swa=dict(start_epoch=2, lr=1e-4))\n"), work_dir) == 0
    records = lines(work_dir)
    assert [r.get("model") for r in records] == [None, None, None, "swa"]
    swa = load_checkpoint(work_dir / "checkpoints" / "swa.pth")
    last = load_checkpoint(work_dir / "checkpoints" / "last.pth")
    assert int(last["hooks"]["SWAHook"]["model"]["n_averaged"]) == 2  # epochs 2 and 3
    assert last["optimizer"]["param_groups"][0]["lr"] == 1e-4  # held after start_epoch
    means = [k for k in swa["model"] if k.endswith("running_mean")]
    assert means and not all(torch.equal(swa["model"][k], last["model"][k]) for k in means)


def test_update_bn_handles_dict_batches_and_equals_the_pooled_statistics():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    batches = [{"image": torch.randint(0, 256, (2, 3, 5, 5), dtype=torch.uint8)} for _ in range(3)]
    batcher = DeviceBatcher(torch.device("cpu"), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    model.eval()
    update_bn(model, batches, batcher)
    with torch.no_grad():
        features = torch.cat([model[0](b["image"].float()) for b in batches])
    torch.testing.assert_close(model[1].running_mean, features.mean(dim=(0, 2, 3)))
    assert model[1].momentum == 0.1 and not model.training  # restored


def test_early_stopping_ends_the_run_when_miou_stalls(tiny_config, tmp_path):
    work_dir = tmp_path / "early"
    impossible_gain = "train.update(early_stop=dict(patience=1, min_delta=0.5))\n"  # mIoU cannot gain 0.5
    assert run(tiny_config(epochs=5, extra=impossible_gain), work_dir) == 0
    summary = json.loads((work_dir / "summary.json").read_text())
    assert summary["stopped_early"] and summary["epochs"] == 2  # first validation sets the bar, second stalls
    assert len(lines(work_dir)) == summary["epochs"]
