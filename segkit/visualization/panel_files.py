"""``test.py --show-dir``: one sample panel PNG per evaluated image, written as the batches go by."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import torch

from segkit.errors import SegkitError
from segkit.evaluation.metrics import image_mious, per_image_confusion
from segkit.paths import relative_output
from segkit.visualization.collector import panel_image
from segkit.visualization.panels import sample_panel


class PanelFileWriter:
    """``observe`` each batch (as ``run_validation``'s ``on_batch``); PNGs mirror the images' file names."""

    def __init__(self, out_dir: str | Path, class_names: Sequence[str], ignore_index: int = 255) -> None:
        self.out_dir = Path(out_dir)
        self.class_names = list(class_names)
        self.ignore_index = ignore_index
        self.written: list[Path] = []

    @torch.no_grad()
    def observe(self, batch: Mapping[str, Any], logits: torch.Tensor, pred: torch.Tensor,
                target: torch.Tensor) -> None:
        mious = image_mious(per_image_confusion(pred, target, len(self.class_names), self.ignore_index))
        for b, miou in enumerate(mious):
            item = panel_image(batch, logits, pred, target, b)
            shown = "-" if miou is None else f"{100 * miou:.1f}%"
            picture = sample_panel(item, self.class_names, title=f"{item.name}   image mIoU {shown}",
                                   ignore_index=self.ignore_index)
            path = self.out_dir / relative_output(item.name, ".png")
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
                raise SegkitError(f"--show-dir: could not write {path}; check that the folder is writable")
            self.written.append(path)

