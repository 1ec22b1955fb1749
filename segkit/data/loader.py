"""Config -> COCO datasets and DataLoaders with reproducible shuffling and augmentation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from segkit.data.coco import CocoSegDataset
from segkit.data.copy_paste import CopyPaste, wrap_copy_paste
from segkit.data.multi_source import SourceSet, source_specs
from segkit.data.sampling import SeededSamples, epoch_sampler
from segkit.data.transforms import build_pipeline
from segkit.errors import SegkitError


def build_dataset(cfg: Any, split: str, labelled: bool | None = None) -> CocoSegDataset | SourceSet | CopyPaste:
    """``split`` is ``train``, ``val`` or ``test``; its ``data.<split>`` section names the annotation file.
    ``labelled`` (default: every split but ``test``) says whether masks are read (``tools/test.py --split test``).

    The training split is a :class:`SourceSet` when ``data.train.sources`` lists several jsons, and is wrapped
    in copy-paste when ``data.train.copy_paste`` is set.
    """
    data, section = cfg.data, cfg.data[split]
    shared = dict(root=data.root, classes=data.classes, overlap=data.overlap, crowd=data.crowd,
                  ignore_index=data.ignore_index, on_bad_annotation=data.on_bad_annotation, cache=data.cache,
                  cache_dir=data.cache_dir)
    if split != "train":
        return CocoSegDataset(ann=section.ann, img_dir=data.img_dir, pipeline=section.pipeline or None,
                              test_mode=not (labelled if labelled is not None else split != "test"),
                              where=f"data.{split}", **shared)
    specs = source_specs(data, cfg.source or "the config")
    if not section.get("sources"):
        dataset = CocoSegDataset(ann=section.ann, img_dir=data.img_dir, pipeline=section.pipeline or None,
                                 where="data.train", **shared)
    else:
        pipeline = build_pipeline(section.pipeline or None, where="data.train.pipeline",
                                  ignore_index=data.ignore_index)
        parts = [CocoSegDataset(ann=spec.ann, img_dir=spec.img_dir, where=spec.key, img_dir_key=spec.img_dir_key,
                                **shared) for spec in specs]
        dataset = SourceSet(parts, [spec.weight for spec in specs], [spec.key for spec in specs], pipeline)
    return wrap_copy_paste(dataset, section.copy_paste)


def _init_worker(_: int) -> None:
    cv2.setNumThreads(0)  # OpenCV's own thread pool in every worker would oversubscribe the cores


def collate(where: str):
    """default_collate, but a batch of differently sized images is a config problem with a clear fix."""

    def collate_checked(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        sizes = {tuple(item["image"].shape[-2:]) for item in items}
        if len(sizes) > 1:
            shown = ", ".join(f"{h}x{w}" for h, w in sorted(sizes)[:3])
            fix = (f"add a Resize or RandomCrop to {where}.pipeline or use batch size 1" if where == "data.train" else
                   "evaluation runs at each image's own size: set data.val_batch_size=1")
            raise SegkitError(f"{where}: images in one batch have different sizes ({shown}); {fix}")
        return default_collate(list(items))

    return collate_checked


def build_dataloader(cfg: Any, split: str, dataset: Dataset | None = None, seed: int = 0,
                     device: torch.device | None = None, rank: int = 0, world_size: int = 1) -> DataLoader:
    """Training loaders shuffle per epoch (``loader.sampler.set_epoch``), weighting several sources by their
    ``weight``; evaluation loaders keep file order.

    Every sample is seeded from (seed, epoch, index) by ``SeededSamples``, so training workers can stay alive
    across epochs (persistent) without making augmentation depend on which worker built which sample.
    Evaluation workers exit after each pass: validation runs every few epochs, and resident workers would hold
    their memory for the whole run.
    """
    dataset = dataset if dataset is not None else build_dataset(cfg, split)
    training = split == "train"
    batch_size = cfg.data.batch_size if training else (cfg.data.val_batch_size or 1)
    workers = cfg.data.num_workers
    sampler = epoch_sampler(dataset, shuffle=training, seed=seed, rank=rank, world_size=world_size)
    return DataLoader(
        SeededSamples(dataset),
        batch_size=batch_size,
        sampler=sampler,
        drop_last=training and len(sampler) > batch_size,  # a lone last image breaks BatchNorm statistics
        num_workers=workers,
        pin_memory=device is not None and device.type == "cuda",
        persistent_workers=training and workers > 0,
        worker_init_fn=_init_worker if workers > 0 else None,
        collate_fn=collate(f"data.{split}"),
        # Its own generator: drawing worker base seeds must not consume the global RNG (dropout) state.
        generator=torch.Generator().manual_seed(seed),
    )
