"""Sliding-window inference (mmsegmentation's ``slide`` mode) for images larger than the training crop.

Windows of ``crop`` pixels start every ``stride`` pixels; the last row/column of windows is shifted back
inside the image instead of being padded, so every window is a real ``crop x crop`` piece (or the whole side
when the image is smaller). Each window's scores are added into the image and divided by how many windows
cover each pixel. The scores are probabilities (each window's softmax) when views merge probabilities, and
logits under ``--merge logit``: windows and views are averaged in the same space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from segkit.errors import SegkitError
from segkit.inference.batching import batched_apply

Box = tuple[int, int, int, int]  # y1, y2, x1, x2


@dataclass(frozen=True)
class SlidingWindow:
    crop: int
    stride: int

    def __post_init__(self) -> None:
        ok = all(type(v) is int and v > 0 for v in (self.crop, self.stride))
        if not ok or self.stride > self.crop:
            raise SegkitError(f"slide crop={self.crop!r} stride={self.stride!r}: need positive integers with "
                              "stride <= crop (pixels between windows would never be predicted)")

    def boxes(self, height: int, width: int) -> list[Box]:
        """Window boxes, row by row; the last ones end at the image edge."""
        def starts(side: int) -> list[tuple[int, int]]:
            count = max(side - self.crop + self.stride - 1, 0) // self.stride + 1
            spans = []
            for i in range(count):
                end = min(i * self.stride + self.crop, side)
                spans.append((max(end - self.crop, 0), end))
            return spans

        return [(y1, y2, x1, x2) for y1, y2 in starts(height) for x1, x2 in starts(width)]

    def scores(self, logits_of: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, probabilities: bool,
               batch_size: int) -> torch.Tensor:
        """Window-averaged scores ``(N, C, H, W)`` of ``images`` ``(N, 3, H, W)``; ``logits_of`` runs the model.

        All windows of all ``N`` images go through the model in forwards of at most ``batch_size`` windows.
        """
        height, width = images.shape[-2:]
        boxes = self.boxes(height, width)
        total: torch.Tensor | None = None
        count = torch.zeros(1, 1, height, width, device=images.device)

        def window(box: Box, i0: int, i1: int) -> torch.Tensor:
            y1, y2, x1, x2 = box
            return images[i0:i1, :, y1:y2, x1:x2]

        def forward(crops: torch.Tensor) -> torch.Tensor:
            logits = logits_of(crops)
            return torch.softmax(logits, dim=1) if probabilities else logits

        def add(box: Box, i0: int, i1: int, out: torch.Tensor) -> None:
            nonlocal total
            if total is None:
                total = out.new_zeros(images.shape[0], out.shape[1], height, width)
            y1, y2, x1, x2 = box
            total[i0:i1, :, y1:y2, x1:x2] += out

        batched_apply(boxes, images.shape[0], batch_size, window, forward, add)
        for y1, y2, x1, x2 in boxes:
            count[..., y1:y2, x1:x2] += 1
        return total / count


def parse_slide(text: str) -> SlidingWindow:
    """``--slide CROP,STRIDE`` such as ``512,341``."""
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise SegkitError(f"--slide {text!r}: expected CROP,STRIDE in pixels, e.g. --slide 512,341")
    crop, stride = (int(p) for p in parts)
    try:
        return SlidingWindow(crop, stride)
    except SegkitError as err:
        raise SegkitError(f"--slide {text!r}: {err}") from err


def window_from_config(test_cfg: dict) -> SlidingWindow | None:
    """``test.mode='slide'`` with ``test.crop`` and ``test.stride``; ``None`` for whole-image inference."""
    if test_cfg.get("mode", "whole") != "slide":
        return None
    crop, stride = test_cfg.get("crop"), test_cfg.get("stride")
    if crop is None or stride is None:
        raise SegkitError(f"test.mode='slide' needs test.crop and test.stride (pixels), got crop={crop!r}, "
                          f"stride={stride!r}")
    try:
        return SlidingWindow(crop, stride)
    except SegkitError as err:
        raise SegkitError(f"test.crop/test.stride: {err}") from err
