"""On CUDA (skipped without a GPU): every architecture trains in fp16 and bf16, CUDA checkpoints resume on
the CPU, and the trainer benchmark runs against the bare loop on the device. The sync-free step itself is
tested in test_sync_free_step.py."""

import argparse
import json
import math
import re

import pytest
import torch

from segkit.benchmarks import trainer as trainer_bench
from segkit.cli.train import main as train_main
from segkit.config import load_config
from segkit.engine.checkpoint import load_checkpoint
from segkit.engine.trainer import Trainer

TINY_MODELS = {
    "Unet": {"encoder_name": "resnet18", "decoder_channels": (32, 16, 16, 8, 8)},
    "EfficientUnet": {"encoder_name": "efficientnet-b0", "decoder_channels": (32, 16, 16, 8, 8)},
    "UnetPlusPlus": {"encoder_name": "resnet18", "decoder_channels": (32, 16, 16, 8, 8)},
    "FPN": {"encoder_name": "resnet18", "decoder_pyramid_channels": 32, "decoder_segmentation_channels": 32},
    "DeepLabV3": {"encoder_name": "resnet18", "decoder_channels": 32},
    "DeepLabV3Plus": {"encoder_name": "resnet18", "decoder_channels": 32},
    "HRNetV2": {"backbone": "hrnet_w18"},
    "HRNetOCR": {"backbone": "hrnet_w18", "ocr_mid_channels": 32, "ocr_key_channels": 16},
}


def test_every_registered_architecture_is_trained_here():
    from segkit.registry import MODELS

    assert set(MODELS.names()) == set(TINY_MODELS)


@pytest.mark.cuda
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
@pytest.mark.parametrize("name", list(TINY_MODELS))
def test_every_architecture_trains_a_few_steps_with_finite_losses(tiny_config, tmp_path, name, amp):
    model = {"_delete_": True, "type": name, "encoder_weights": None, **TINY_MODELS[name]}
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


@pytest.mark.cuda
def test_a_checkpoint_saved_on_cuda_resumes_on_the_cpu(tiny_config, tmp_path):
    config = tiny_config(epochs=2, extra="train.update(amp=True, keep_last=2, ema=dict(decay=0.9))\n")
    gpu = tmp_path / "gpu"
    assert train_main([str(config), "--work-dir", str(gpu), "--no-progress", "--device", "cuda"]) == 0
    first = gpu / "checkpoints" / "epoch_1.pth"
    state = load_checkpoint(first)
    assert state["scaler"] and all(t.device.type == "cpu" for t in state["model"].values())
    cpu = tmp_path / "cpu"
    assert train_main([str(config), "--work-dir", str(cpu), "--resume", str(first), "--no-progress", "--device",
                       "cpu"]) == 0
    resumed = load_checkpoint(cpu / "checkpoints" / "last.pth")
    assert (resumed["epoch"], resumed["iter"]) == (2, 4)
    assert all(torch.isfinite(t).all() for t in resumed["model"].values() if t.is_floating_point())
    assert json.loads((cpu / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 2


@pytest.mark.cuda
def test_trainer_benchmark_runs_on_cuda_against_the_bare_loop(capsys):
    parser = argparse.ArgumentParser()
    trainer_bench.add_arguments(parser)
    assert trainer_bench.run(parser.parse_args(["--device", "cuda", "--batch", "2", "--size", "64",
                                                "--repeats", "3"])) == 0
    out = capsys.readouterr().out
    assert re.search(r"segkit / bare = [\d.]+x", out) and ", cuda, " in out
