"""cuDNN's autotuner runs for training (fixed shapes) and is off while validation sees images of any size."""

import pytest
import torch
from torch import nn

from segkit.data.batch import DeviceBatcher
from segkit.engine.validation import run_validation
from segkit.evaluation.evaluator import SegEvaluator


class Recorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.benchmark_seen: list[bool] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.benchmark_seen.append(torch.backends.cudnn.benchmark)
        return self.conv(images)


def batches():
    for height, width in ((8, 12), (10, 6)):  # two sizes, as full-size validation images come
        yield {"image": torch.zeros(1, 3, height, width, dtype=torch.uint8),
               "mask": torch.zeros(1, height, width, dtype=torch.uint8)}


def test_validation_turns_the_autotuner_off_and_restores_it(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    model = Recorder()
    evaluator = SegEvaluator(2, ["Background", "a"], 255, torch.device("cpu"))
    batcher = DeviceBatcher(torch.device("cpu"), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    run_validation(model, batches(), evaluator, batcher, progress=False)
    assert model.benchmark_seen == [False, False] and torch.backends.cudnn.benchmark is True

    def failing(_images):
        raise RuntimeError("boom")

    model.forward = failing
    with pytest.raises(RuntimeError, match="boom"):
        run_validation(model, batches(), evaluator, batcher, progress=False)
    assert torch.backends.cudnn.benchmark is True  # restored on errors too
