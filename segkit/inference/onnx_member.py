"""An exported ``.onnx`` as an ensemble member: the Predictor's TTA, windows and merging apply unchanged.

The file's metadata gives the member what a checkpoint's stored config gives a ``.pth``: class names,
mean/std and the stride multiple, so mixed ``.pth``/``.onnx`` ensembles keep their class-list checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from segkit.deploy.onnx_session import OnnxInfo, open_session, read_info
from segkit.inference.predictor import Member


class OnnxNetwork(nn.Module):
    """Normalised float images in, logits out, computed by onnxruntime (inputs go through host memory)."""

    def __init__(self, session: Any, multiple: int) -> None:
        super().__init__()
        self.session = session
        self.multiple = multiple
        self.input = session.get_inputs()[0].name
        self.fp16 = "float16" in session.get_inputs()[0].type

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feed = images.detach().float().cpu().numpy().astype(np.float16 if self.fp16 else np.float32)
        logits = self.session.run(None, {self.input: feed})[0]
        return torch.from_numpy(logits.astype(np.float32)).to(images.device)


def read_onnx(path: str | Path) -> tuple[Any, OnnxInfo]:
    session = open_session(path)
    return session, read_info(session, path)


def onnx_member(session: Any, info: OnnxInfo, weight: float, name: str) -> Member:
    return Member(OnnxNetwork(session, info.multiple).eval(), info.mean, info.std, weight=weight, name=name)
