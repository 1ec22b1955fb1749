"""uint8 batches -> normalised float tensors on the training device.

The loader workers hand uint8 images and masks to the main process (a quarter of the float32 traffic);
the subtraction and division then run on the device that trains, where they are nearly free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


class DeviceBatcher:
    """Moves a loader batch to ``device``: float normalised images and int64 masks."""

    def __init__(self, device: torch.device, mean: Sequence[float], std: Sequence[float]) -> None:
        self.device = device
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def images(self, batch: Mapping[str, Any]) -> torch.Tensor:
        images = batch["image"].to(self.device, non_blocking=True)
        return (images.float() - self.mean) / self.std

    def masks(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return batch["mask"].to(self.device, non_blocking=True).long()
