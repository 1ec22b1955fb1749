"""train.amp: False, True, "fp16", "bf16" mean one autocast dtype and one GradScaler setting per device."""

import math

import pytest
import torch

from segkit.cli.train import main as train_main
from segkit.config import load_config
from segkit.engine.precision import amp_dtype, autocast, grad_scaler
from segkit.engine.trainer import Trainer
from segkit.errors import SegkitError

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(("amp", "dtype"), [(False, None), (True, torch.bfloat16), ("bf16", torch.bfloat16)])
def test_cpu_precisions(amp, dtype):
    assert amp_dtype(CPU, amp) == dtype and not grad_scaler(CPU, amp).is_enabled()
    with autocast(CPU, amp):
        assert torch.is_autocast_enabled("cpu") == (dtype is not None)
        if dtype is not None:
            assert torch.get_autocast_dtype("cpu") == dtype


def test_fp16_off_cuda_and_unknown_values_are_one_line_errors(tiny_config, tmp_path, capsys):
    with pytest.raises(SegkitError, match=r"train.amp='fp16' needs a CUDA device \(this run is on cpu\); use "
                                          r"train.amp='bf16' or True"):
        amp_dtype(CPU, "fp16")
    with pytest.raises(SegkitError, match="train.amp must be False, True, 'fp16' or 'bf16', got 'fp32'"):
        autocast(CPU, "fp32")
    config = tiny_config(epochs=1)
    assert train_main([str(config), "--work-dir", str(tmp_path / "w"), "--device", "cpu",
                       "--set", "train.amp='fp16'"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.amp='fp16' needs a CUDA device" in err[0]
    assert not (tmp_path / "w" / "checkpoints").exists()


def test_a_bf16_step_on_the_cpu(tiny_config, tmp_path):
    trainer = Trainer(load_config(tiny_config(epochs=1), ["train.amp='bf16'"]), tmp_path / "w", CPU, progress=False)
    trainer.run_step([next(iter(trainer.train_loader))])
    assert math.isfinite(trainer.step_loss) and not trainer.scaler.is_enabled()


@pytest.mark.cuda
@pytest.mark.parametrize(("amp", "dtype", "scaled"), [(True, torch.float16, True), ("fp16", torch.float16, True),
                                                      ("bf16", torch.bfloat16, False), (False, None, False)])
def test_cuda_precisions(amp, dtype, scaled):
    assert amp_dtype(CUDA, amp) == dtype and grad_scaler(CUDA, amp).is_enabled() == scaled
