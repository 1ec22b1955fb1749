"""Pictures of training samples as the model receives them: augmented image, class overlay, legend.

Samples come from the dataset's own ``__getitem__`` through ``SeededSamples`` with the training
loader's per-sample seeds, so the picture of (seed, epoch, index) is the exact augmentation that sample
gets in that epoch of a run with that seed. Shown before the device-side steps: the uint8 image, not the
normalised floats, and without CutMix, which mixes whole batches on the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from segkit.data.sampling import SeededSamples, epoch_sampler, sample_seed
from segkit.errors import SegkitError
from segkit.paths import output_dir
from segkit.visualization.palette import class_colors, colorize, draw_legend, overlay

PANEL = 512  # longest side of the pictures in one sample's PNG
TILE = 256  # longest side of a tile in the grid
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def pick_samples(dataset: Any, num: int, seed: int, epoch: int = 0, shuffle: bool = True,
                 indices: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """``(index, sample seed)`` pairs: the first ``num`` a training loader would yield in ``epoch``
    (file order if not ``shuffle``), or exactly ``indices``."""
    if indices:
        bad = [i for i in indices if not 0 <= i < len(dataset)]
        if bad:
            raise SegkitError(f"--indices {bad[0]}: the split has {len(dataset)} images (indices 0.."
                              f"{len(dataset) - 1})")
        return [(i, sample_seed(seed, epoch, i)) for i in indices]
    sampler = epoch_sampler(dataset, shuffle=shuffle, seed=seed)
    sampler.set_epoch(epoch)
    picked = []
    for item in sampler:
        if len(picked) == num:
            break
        picked.append(item)
    return picked


def render_sample(sample: dict[str, Any], classes: Sequence[str], ignore_index: int = 255, alpha: float = 0.5,
                  title: str = "", size: int = PANEL) -> np.ndarray:
    """One sample as an RGB picture: image | overlay | mask, and a legend of the classes present with pixel %."""
    image, mask = _arrays(sample)
    colors = class_colors(len(classes))
    panels = [_resize(image, size, cv2.INTER_AREA)]
    legend = None
    if mask is not None:
        _check_mask(mask, classes, ignore_index)
        panels.append(_resize(overlay(image, mask, colors, alpha, ignore_index), size, cv2.INTER_NEAREST))
        panels.append(_resize(colorize(mask, colors, ignore_index), size, cv2.INTER_NEAREST))  # unblended colours
        present, counts = np.unique(mask, return_counts=True)
        names = [f"{_name(classes, k, ignore_index)}  {100 * n / mask.size:.1f}%" for k, n in zip(present, counts)]
        swatches = [colors[k] if k < len(colors) else (128, 128, 128) for k in present]
        legend = draw_legend(names, swatches, max_height=panels[0].shape[0])
    gap = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
    parts = [panels[0]]
    for extra in panels[1:] + ([legend] if legend is not None else []):
        parts += [gap, _pad_to_height(extra, panels[0].shape[0])]
    return _with_title(np.concatenate(parts, axis=1), title)


def render_grid(samples: Sequence[dict[str, Any]], classes: Sequence[str], captions: Sequence[str],
                ignore_index: int = 255, alpha: float = 0.5, columns: int = 4) -> np.ndarray:
    """Overlays (or images, without masks) as a grid of tiles, with one legend for every class shown."""
    colors = class_colors(len(classes))
    tiles, shown = [], set()
    for sample, caption in zip(samples, captions):
        image, mask = _arrays(sample)
        if mask is not None:
            _check_mask(mask, classes, ignore_index)
            shown.update(int(k) for k in np.unique(mask))
            image = overlay(image, mask, colors, alpha, ignore_index)
        tile = _with_title(_resize(image, TILE, cv2.INTER_NEAREST if mask is not None else cv2.INTER_AREA), caption,
                           scale=0.4)
        tiles.append(tile)
    cell_h = max(t.shape[0] for t in tiles)
    cell_w = max(t.shape[1] for t in tiles)
    rows = []
    for start in range(0, len(tiles), columns):
        row = [_pad(t, cell_h, cell_w) for t in tiles[start : start + columns]]
        if len(tiles) > columns:  # a short last row is padded to the grid's width
            row += [np.full((cell_h, cell_w, 3), 255, np.uint8)] * (columns - len(row))
        rows.append(np.concatenate(row, axis=1))
    grid = np.concatenate(rows, axis=0)
    if shown:
        order = sorted(shown)
        legend = draw_legend([_name(classes, k, ignore_index) for k in order],
                             [colors[k] if k < len(colors) else (128, 128, 128) for k in order],
                             max_height=grid.shape[0])
        grid = np.concatenate([grid, _pad_to_height(legend, grid.shape[0])], axis=1)
    return grid


def browse(dataset: Any, picked: Sequence[tuple[int, int]], out: str | Path, ignore_index: int = 255,
           alpha: float = 0.5, progress: bool = True) -> list[Path]:
    """Write ``sample_<n>_<index>.png`` per picked sample and ``grid.png`` to ``out``; return the paths."""
    out = output_dir(out)
    seeded = SeededSamples(dataset)
    written, samples, captions = [], [], []
    for n, (index, seed) in enumerate(tqdm(picked, desc="samples", unit="img", disable=not progress)):
        sample = seeded[(index, seed)]
        h, w = sample["image"].shape[-2:]
        title = (f"#{index} {sample.get('file_name', '')}  fed as {w}x{h} "
                 f"(file {sample.get('width', '?')}x{sample.get('height', '?')})")
        path = out / f"sample_{n:03d}_{index}.png"
        _write_png(path, render_sample(sample, dataset.classes, ignore_index, alpha, title))
        written.append(path)
        samples.append(sample)
        captions.append(f"#{index} {Path(str(sample.get('file_name', ''))).name}")
    if samples:
        grid = out / "grid.png"
        _write_png(grid, render_grid(samples, dataset.classes, captions, ignore_index, alpha))
        written.append(grid)
    return written


def _arrays(sample: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    image = sample["image"]
    image = image.numpy() if hasattr(image, "numpy") else np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise SegkitError(f"sample image is {image.dtype} with shape {image.shape}; browsing expects the uint8 "
                          "CHW images segkit's datasets return (the device normalises later)")
    mask = sample.get("mask")
    if mask is not None:
        mask = mask.numpy() if hasattr(mask, "numpy") else np.asarray(mask)
    return np.ascontiguousarray(image.transpose(1, 2, 0)), mask


def _check_mask(mask: np.ndarray, classes: Sequence[str], ignore_index: int) -> None:
    bad = mask[(mask >= len(classes)) & (mask != ignore_index)]
    if bad.size:
        raise SegkitError(f"a mask holds class {int(bad.max())} but the dataset has {len(classes)} classes; "
                          "check data.classes")


def _name(classes: Sequence[str], k: int, ignore_index: int) -> str:
    return f"ignore ({ignore_index})" if k == ignore_index else classes[k]


def _resize(image: np.ndarray, longest: int, upscale_interp: int) -> np.ndarray:
    """Scale so the longest side is ``longest``: pixel-exact (nearest) up, area-averaged down."""
    h, w = image.shape[:2]
    scale = longest / max(h, w)
    if scale == 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=upscale_interp if scale > 1 else cv2.INTER_AREA)


def _pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    out = np.full((height, width, 3), 255, np.uint8)
    out[: image.shape[0], : image.shape[1]] = image
    return out


def _pad_to_height(image: np.ndarray, height: int) -> np.ndarray:
    return _pad(image[:height], height, image.shape[1])


def _with_title(image: np.ndarray, title: str, scale: float = 0.5) -> np.ndarray:
    if not title:
        return image
    (text_w, text_h), base = cv2.getTextSize(title, _FONT, scale, 1)
    strip = np.full((text_h + base + 10, max(image.shape[1], text_w + 10), 3), 255, np.uint8)
    cv2.putText(strip, title, (5, text_h + 5), _FONT, scale, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([strip, _pad(image, image.shape[0], strip.shape[1])], axis=0)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise SegkitError(f"could not write {path}; check the disk space and permissions")
