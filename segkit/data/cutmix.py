"""CutMix for segmentation: one box of a shuffled partner's image *and* mask pasted into every sample.

Runs on the device batch (after normalisation), so it costs two copies and no worker traffic. The random
choices are drawn on the host (``draw``, from a CPU generator) and applied with device ops only (``apply``):
the partners' boxes are gathered as views, so no index tensor is copied to the device. Unlike
classification CutMix, no label mixing weight is needed: every pixel keeps its own label, the pasted box's
pixels carry the partner's labels. As in the paper's reference code, one box is drawn per batch; its area
fraction is ``1 - lam`` with ``lam ~ Beta(alpha, alpha)`` and its centre uniform over the image (the box is
clipped at the border, so the pasted area can be smaller).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from segkit.errors import SegkitError
from segkit.registry import closest


class CutMix:
    """``CutMix(p=0.5, alpha=1.0)(images, masks, generator)`` -> mixed ``(images, masks)``.

    ``images`` is ``(B, C, H, W)``, ``masks`` ``(B, H, W)``; both are returned as new tensors when mixed and
    unchanged (the same objects) when not. All randomness comes from ``generator`` (a CPU
    ``torch.Generator``), so a seeded generator gives the same boxes and partners on any device.
    """

    def __init__(self, p: float = 0.5, alpha: float = 1.0) -> None:
        self.p = p
        self.alpha = alpha

    def __repr__(self) -> str:
        return f"CutMix(p={self.p}, alpha={self.alpha})"

    def __call__(self, images: torch.Tensor, masks: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if images.dim() != 4 or masks.shape != (images.shape[0], *images.shape[2:]):
            raise ValueError(f"CutMix needs images (B, C, H, W) and masks (B, H, W), got {tuple(images.shape)} "
                             f"and {tuple(masks.shape)}")
        plan = self.draw(*masks.shape, generator)
        return (images, masks) if plan is None else self.apply(images, masks, *plan)

    def draw(self, batch: int, height: int, width: int,
             generator: torch.Generator) -> tuple[list[int], tuple[int, int, int, int]] | None:
        """``(partner of each sample, box)``, or None when this batch is left alone; host-side only."""
        if batch < 2 or float(torch.rand((), generator=generator)) >= self.p:
            return None
        partner = torch.randperm(batch, generator=generator).tolist()
        return partner, self.sample_box(height, width, generator)

    @staticmethod
    def apply(images: torch.Tensor, masks: torch.Tensor, partner: list[int],
              box: tuple[int, int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Paste ``box`` of sample ``partner[b]`` into sample ``b``: new tensors, device ops only."""
        y0, y1, x0, x1 = box
        mixed_images, mixed_masks = images.clone(), masks.clone()
        mixed_images[:, :, y0:y1, x0:x1] = torch.stack([images[k, :, y0:y1, x0:x1] for k in partner])
        mixed_masks[:, y0:y1, x0:x1] = torch.stack([masks[k, y0:y1, x0:x1] for k in partner])
        return mixed_images, mixed_masks

    def sample_box(self, height: int, width: int, generator: torch.Generator) -> tuple[int, int, int, int]:
        """``(y0, y1, x0, x1)`` of a box covering about ``1 - lam`` of the image, ``lam ~ Beta(alpha, alpha)``."""
        # torch's Beta sampler takes no generator; a numpy stream seeded from it keeps the draw reproducible.
        seed = int(torch.randint(0, 2**62, (), generator=generator))
        rng = np.random.default_rng(seed)
        lam = rng.beta(self.alpha, self.alpha)
        ratio = math.sqrt(1.0 - lam)
        cut_h, cut_w = int(round(height * ratio)), int(round(width * ratio))
        cy, cx = int(rng.integers(height)), int(rng.integers(width))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + (cut_h - cut_h // 2), height)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + (cut_w - cut_w // 2), width)
        return y0, y1, x0, x1


def from_config(cfg: Mapping[str, Any] | None, where: str = "data.train.cutmix") -> CutMix | None:
    """``None`` (CutMix off) or ``dict(p=0.5, alpha=1.0)`` -> a CutMix; bad keys or values name ``where``."""
    if cfg is None:
        return None
    if not isinstance(cfg, Mapping):
        raise SegkitError(f"{where} must be None or a dict like dict(p=0.5, alpha=1.0), got {cfg!r}")
    allowed = ("p", "alpha")
    for key in cfg:
        if key not in allowed:
            raise SegkitError(f"{where}: unknown key {key!r}{closest(str(key), list(allowed))} "
                              f"(keys: {', '.join(allowed)})")
    p, alpha = cfg.get("p", 0.5), cfg.get("alpha", 1.0)
    if not _is_number(p) or not 0.0 <= p <= 1.0:
        raise SegkitError(f"{where}.p must be a probability in [0, 1], got {p!r}")
    if not _is_number(alpha) or not alpha > 0:
        raise SegkitError(f"{where}.alpha must be a positive number (1.0 = box area uniform), got {alpha!r}")
    return CutMix(p=float(p), alpha=float(alpha))


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)
