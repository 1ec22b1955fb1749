"""Which validation images get drawn, kept during the one validation pass that also computes the metrics.

Three kinds of pictures, all from the forward pass the metrics already paid for:

- a **fixed** set chosen once, on the first validation pass, so that every class in the split appears: an
  image joins when it shows a ground-truth class no earlier pick shows (a greedy cover in loader order).
  The same images then come back at every validation, so TensorBoard's step slider shows them improving;
- the **k worst** images of this pass by per-image mIoU (mean over the classes in the image's GT or
  prediction);
- per class, the first ``class_images`` images whose ground truth holds the class (also fixed after the
  first pass), for that class's TP / FP / FN panel.

Only the chosen images are copied to the CPU (the worst ones only while they rank among the k worst), and
nothing is drawn until :meth:`PanelCollector.finish`.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from segkit.evaluation.metrics import image_mious, per_image_confusion
from segkit.visualization.panels import PanelImage, class_panel, sample_panel


def panel_image(batch: Mapping[str, Any], logits: torch.Tensor, pred: torch.Tensor, target: torch.Tensor,
                index: int) -> PanelImage:
    """CPU copy of image ``index`` of a batch; the photo is the loader's uint8 one, not a de-normalised float."""
    confidence = torch.softmax(logits[index].float(), dim=0).amax(dim=0)
    return PanelImage(
        name=str(batch["file_name"][index]),
        image=batch["image"][index].permute(1, 2, 0).cpu().numpy(),
        gt=target[index].to(torch.uint8).cpu().numpy(),
        pred=pred[index].to(torch.uint8).cpu().numpy(),
        confidence=confidence.cpu().numpy(),
    )


class PanelCollector:
    """Feed every validation batch to :meth:`observe`, then take the tagged pictures from :meth:`finish`."""

    def __init__(self, class_names: Sequence[str], ignore_index: int = 255, worst_k: int = 4,
                 class_images: int = 3) -> None:
        self.class_names = list(class_names)
        self.ignore_index = ignore_index
        self.worst_k = worst_k
        self.class_images = class_images
        self.fixed: list[int] = []  # image ids of the fixed sample set, in loader order
        self.per_class: dict[int, list[int]] = {}  # class index -> image ids for its panel
        self._wanted: set[int] = set()  # every image id above
        self._choosing = True  # until the first pass has finished
        self._covered: set[int] = set()
        self._kept: dict[int, PanelImage] = {}
        self._miou: dict[int, float | None] = {}
        self._worst: list[tuple[float, int, int]] = []  # heap of (-mIoU, -arrival, image id): top = best kept
        self._arrival = 0

    @torch.no_grad()
    def observe(self, batch: Mapping[str, Any], logits: torch.Tensor, pred: torch.Tensor,
                target: torch.Tensor) -> None:
        """One validation batch: the loader's dict (uint8 ``image``, ``image_id``, ``file_name``), its logits
        ``(B, C, H, W)``, their argmax and the int target ``(B, H, W)``, as the metrics saw them."""
        cms = per_image_confusion(pred, target, len(self.class_names), self.ignore_index)
        mious = image_mious(cms)
        gt_classes = (cms.sum(dim=2) > 0).cpu()
        for b, image_id in enumerate(int(i) for i in batch["image_id"]):
            if self._choosing:
                self._choose(image_id, gt_classes[b].nonzero().flatten().tolist())
            miou = mious[b]
            worst = miou is not None and self._rank_worst(image_id, miou)
            if image_id in self._wanted or worst:
                self._miou[image_id] = miou
                self._kept[image_id] = panel_image(batch, logits, pred, target, b)

    def _choose(self, image_id: int, classes: list[int]) -> None:
        if set(classes) - self._covered:
            self.fixed.append(image_id)
            self._wanted.add(image_id)
            self._covered.update(classes)
        for c in classes:
            ids = self.per_class.setdefault(c, [])
            if len(ids) < self.class_images:
                ids.append(image_id)
                self._wanted.add(image_id)

    def _rank_worst(self, image_id: int, miou: float) -> bool:
        """Push onto the k-worst heap; True if the image is (for now) among the k worst.

        An image pushed out is dropped from the kept copies unless it is wanted for another panel.
        """
        if self.worst_k <= 0:
            return False
        self._arrival += 1
        entry = (-miou, -self._arrival, image_id)  # ties keep the earlier image
        if len(self._worst) < self.worst_k:
            heapq.heappush(self._worst, entry)
            return True
        if entry <= self._worst[0]:
            return False
        _, _, dropped = heapq.heapreplace(self._worst, entry)
        if dropped not in self._wanted:
            self._kept.pop(dropped, None)
            self._miou.pop(dropped, None)
        return True

    def worst_ids(self) -> list[int]:
        """Image ids of the k worst images seen so far in this pass, worst first."""
        return [image_id for _, _, image_id in sorted(self._worst, reverse=True)]

    def _caption(self, image_id: int) -> str:
        item, miou = self._kept[image_id], self._miou[image_id]
        return f"{item.name}   image mIoU {'-' if miou is None else f'{100 * miou:.1f}%'}"

    def finish(self) -> list[tuple[str, np.ndarray]]:
        """``(tag, RGB picture)`` of this pass; fixes the chosen sets and forgets the kept images."""
        panels = []
        for image_id in self.fixed:
            if image_id in self._kept:
                tag = self._kept[image_id].name.replace("/", "_")
                panels.append((f"val/samples/fixed/{tag}",
                               sample_panel(self._kept[image_id], self.class_names,
                                            title=f"fixed sample: {self._caption(image_id)}",
                                            ignore_index=self.ignore_index)))
        for rank, image_id in enumerate(self.worst_ids(), start=1):
            panels.append((f"val/samples/worst/{rank}",
                           sample_panel(self._kept[image_id], self.class_names,
                                        title=f"worst #{rank}: {self._caption(image_id)}",
                                        ignore_index=self.ignore_index)))
        for c in sorted(self.per_class):
            items = [self._kept[i] for i in self.per_class[c] if i in self._kept]
            if items:
                panels.append((f"val/class/{self.class_names[c]}",
                               class_panel(items, c, self.class_names, self.ignore_index)))
        self._choosing = False
        self._kept, self._miou, self._worst, self._arrival = {}, {}, [], 0
        return panels
