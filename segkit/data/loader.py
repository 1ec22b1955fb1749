"""Config -> COCO datasets and DataLoaders with reproducible shuffling and augmentation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import torch
from torch.utils.data import DataLoader, Dataset, default_collate, get_worker_info

from segkit.data.coco import CocoSegDataset
from segkit.errors import SegkitError


def build_dataset(cfg: Any, split: str) -> CocoSegDataset:
    """``split`` is ``train``, ``val`` or ``test``; its ``data.<split>`` section names the annotation file."""
    section = cfg.data[split]
    return CocoSegDataset(root=cfg.data.root, ann=section.ann, img_dir=cfg.data.img_dir,
                          pipeline=section.pipeline or None, test_mode=split == "test", where=f"data.{split}")


def seed_pipeline(dataset: Dataset, seed: int) -> None:
    """albumentations >= 2 draws from its own generators, which torch's worker seeding does not reach."""
    pipeline = getattr(dataset, "pipeline", None)
    if pipeline is not None:
        pipeline.set_random_seed(seed % 2**32)


def _seed_worker(_: int) -> None:
    cv2.setNumThreads(0)  # OpenCV's own thread pool in every worker would oversubscribe the cores
    info = get_worker_info()
    seed_pipeline(info.dataset, info.seed)  # info.seed = loader seed + worker id: new every epoch


def collate(where: str):
    """default_collate, but a batch of differently sized images is a config problem with a clear fix."""

    def collate_checked(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        sizes = {tuple(item["image"].shape[-2:]) for item in items}
        if len(sizes) > 1:
            shown = ", ".join(f"{h}x{w}" for h, w in sorted(sizes)[:3])
            raise SegkitError(f"{where}: images in one batch have different sizes ({shown}); add a Resize or "
                              f"RandomCrop to {where}.pipeline or use batch size 1")
        return default_collate(list(items))

    return collate_checked


def build_dataloader(cfg: Any, split: str, dataset: Dataset | None = None, seed: int = 0,
                     device: torch.device | None = None) -> DataLoader:
    """Training loaders shuffle with a seeded generator; evaluation loaders keep file order."""
    dataset = dataset if dataset is not None else build_dataset(cfg, split)
    training = split == "train"
    batch_size = cfg.data.batch_size if training else (cfg.data.val_batch_size or 1)
    workers = cfg.data.num_workers
    generator = torch.Generator().manual_seed(seed)
    seed_pipeline(dataset, seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=training,
        drop_last=training and len(dataset) > batch_size,  # a lone last image breaks BatchNorm statistics
        num_workers=workers,
        pin_memory=device is not None and device.type == "cuda",
        persistent_workers=False,
        worker_init_fn=_seed_worker if workers > 0 else None,
        generator=generator,
        collate_fn=collate(f"data.{split}"),
    )
