"""Test-time augmentation views: flips and 90-degree rotations (ttach's transforms) at several scales.

A view is one input resize (a scale) followed by one geometric transform; its ``undo`` applies the inverse
transform to the model output and resizes it bilinearly to the *exact* original size. Scaled sizes are
explicit: each side is ``round(side * scale)`` on its own, so the aspect ratio is kept to within a pixel
(the model pads its input to its stride itself, as at scale 1, and crops its output back), and the way back
is a resize to the original ``(H, W)``, never a reciprocal scale factor (which misses the original size by a
pixel whenever the side does not divide, and is where ttach's ``Scale`` fails).

Merging happens in the caller: ``prob`` averages each view's softmax (default; probabilities are comparable
between views, logits' scales are not), ``logit`` averages the logits and takes one softmax. See
docs/inference.md for when the two choose different classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import ttach

from segkit.errors import SegkitError

TTA_MODES = ("none", "flip", "hvflip", "d4")
MERGE_MODES = ("prob", "logit")
_GEOMETRIC = {
    "none": lambda: ttach.Compose([]),  # one transformer that changes nothing
    "flip": lambda: ttach.Compose([ttach.HorizontalFlip()]),  # identity, horizontal flip
    "hvflip": ttach.aliases.flip_transform,  # identity, vertical, horizontal, both (= rotation by 180)
    "d4": ttach.aliases.d4_transform,  # the 8 flips/rotations of the square
}


@dataclass(frozen=True)
class TTASpec:
    """What to average: ``mode`` (geometric views) x ``scales``, merged as ``merge``."""

    mode: str = "none"
    scales: tuple[float, ...] = (1.0,)
    merge: str = "prob"

    def __post_init__(self) -> None:
        if self.mode not in TTA_MODES:
            raise SegkitError(f"--tta {self.mode!r} is not a TTA mode; use one of {', '.join(TTA_MODES)}")
        if self.merge not in MERGE_MODES:
            raise SegkitError(f"--merge {self.merge!r}: use one of {', '.join(MERGE_MODES)}")
        if not self.scales or any(not (isinstance(s, int | float) and 0 < s < 64) for s in self.scales):
            raise SegkitError(f"--scales {self.scales!r}: give positive factors such as 0.75,1.0,1.25")
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))

    @property
    def num_views(self) -> int:
        return len(_GEOMETRIC[self.mode]()) * len(self.scales)

    def views(self, height: int, width: int) -> list[View]:
        """The views of an ``height x width`` image."""
        sizes = [None if s == 1.0 else scaled_size(height, width, s) for s in self.scales]
        return [View(size, transform) for size in sizes for transform in _GEOMETRIC[self.mode]()]


def parse_scales(text: str) -> tuple[float, ...]:
    """``"0.75,1.0,1.25"`` -> ``(0.75, 1.0, 1.25)``; anything else is a one-line error."""
    try:
        scales = tuple(float(part) for part in text.split(","))
    except ValueError:
        scales = ()
    if not scales or any(not 0 < s < 64 for s in scales) or len(set(scales)) != len(scales):
        raise SegkitError(f"--scales {text!r}: expected distinct comma-separated positive factors such as "
                          "0.75,1.0,1.25")
    return scales


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """Each side times ``scale``, rounded half up on its own (at least 1 pixel): the aspect ratio is kept to within
    a pixel. Rounding to the model's stride instead would change it (97x131 at 0.5 would become 64x64 for
    stride 32); the padded model needs no particular size."""
    return tuple(max(1, math.floor(side * scale + 0.5)) for side in (height, width))


@dataclass(frozen=True)
class View:
    """Resize to ``size`` (``None``: keep), then a ttach transformer; ``undo`` inverts both."""

    size: tuple[int, int] | None
    transform: ttach.base.Transformer = field(compare=False)

    def input_shape(self, height: int, width: int) -> tuple[int, int]:
        """The spatial shape the model sees (rotations by 90 degrees swap the sides)."""
        probe = torch.empty(1, 1, *(self.size or (height, width)), device="meta")
        return tuple(self.transform.augment_image(probe).shape[-2:])

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        if self.size is not None:
            images = F.interpolate(images, size=self.size, mode="bilinear", align_corners=False)
        return self.transform.augment_image(images)

    def undo(self, scores: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Model output of the augmented input -> aligned with the original ``height x width`` image."""
        scores = self.transform.deaugment_mask(scores)
        if scores.shape[-2:] != (height, width):
            scores = F.interpolate(scores, size=(height, width), mode="bilinear", align_corners=False)
        return scores
