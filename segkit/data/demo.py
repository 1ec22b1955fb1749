"""A deterministic synthetic COCO dataset shaped like the recycling-trash data.

It exists so ``make demo``, the tests and the benchmarks run without the real photos: six trash-like
categories, each with its own shape family *and* colour, on textured backgrounds, with overlaps,
border clipping, tiny and large objects and one multi-part class (several polygons per annotation).

The picture agrees with the COCO semantics the loader uses: every object is rasterised from the
exact (rounded) polygons written to the json with pycocotools, and painted largest area first, so
painting the annotations in area-descending order reproduces the image's object layout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from segkit.errors import SegkitError

DEMO_CATEGORIES: list[dict] = [
    {"id": 0, "name": "Paper", "supercategory": "Paper"},
    {"id": 1, "name": "Metal", "supercategory": "Metal"},
    {"id": 2, "name": "Glass", "supercategory": "Glass"},
    {"id": 3, "name": "Plastic", "supercategory": "Plastic"},
    {"id": 4, "name": "Styrofoam", "supercategory": "Styrofoam"},
    {"id": 5, "name": "Plastic bag", "supercategory": "Plastic bag"},
]

# RGB base colour per category id; each object gets a jittered copy, then lighting and noise.
DEMO_COLORS: dict[int, tuple[int, int, int]] = {
    0: (235, 215, 130),  # Paper: cream
    1: (60, 95, 205),  # Metal: blue
    2: (45, 175, 95),  # Glass: green
    3: (215, 55, 50),  # Plastic: red
    4: (245, 245, 240),  # Styrofoam: white
    5: (165, 65, 195),  # Plastic bag: purple
}

SPLITS = ("train", "val", "test")
MIN_SIZE = 32
_COLOR_JITTER = 15.0
_MIN_AREA = 8  # pixels; smaller objects are resampled so every annotation is visible when painted


def _ring(rng: np.random.Generator, n: int, r_lo: float, r_hi: float, angle_jitter: float) -> np.ndarray:
    """``n`` points around the origin at jittered, still-ordered angles: a star-shaped simple polygon."""
    angles = np.arange(n) * (2 * np.pi / n) + rng.uniform(-angle_jitter, angle_jitter, n) * (np.pi / n)
    radii = rng.uniform(r_lo, r_hi, n)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _quadrilateral(rng: np.random.Generator, r: float) -> list[np.ndarray]:
    return [_ring(rng, 4, 0.6 * r, r, 0.55)]


def _rectangle(rng: np.random.Generator, r: float) -> list[np.ndarray]:
    h = r * rng.uniform(0.35, 0.8)
    return [np.array([[-r, -h], [r, -h], [r, h], [-r, h]])]


def _ellipse(rng: np.random.Generator, r: float) -> list[np.ndarray]:
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    return [np.stack([r * np.cos(t), r * rng.uniform(0.4, 0.75) * np.sin(t)], axis=1)]


def _star(rng: np.random.Generator, r: float) -> list[np.ndarray]:
    spikes = int(rng.integers(5, 8))
    t = np.arange(2 * spikes) * (np.pi / spikes)
    radii = np.where(np.arange(2 * spikes) % 2 == 0, r, r * rng.uniform(0.4, 0.55))
    return [np.stack([radii * np.cos(t), radii * np.sin(t)], axis=1)]


def _circle(rng: np.random.Generator, r: float) -> list[np.ndarray]:
    return [_ring(rng, int(rng.integers(16, 21)), 0.88 * r, r, 0.2)]


def _blobs(rng: np.random.Generator, r: float) -> list[np.ndarray]:
    """Two or three blobs of radius <= rp whose centres are > 2 rp apart, so the parts never touch."""
    parts = int(rng.integers(2, 4))
    rp = 0.42 * r
    spacing = 2.25 * rp
    out = []
    for k in range(parts):
        centre = np.array([(k - (parts - 1) / 2) * spacing, rng.uniform(-0.3, 0.3) * rp])
        out.append(_ring(rng, 7, 0.7 * rp, rp, 0.5) + centre)
    return out


_SHAPES: dict[int, Callable[[np.random.Generator, float], list[np.ndarray]]] = {
    0: _quadrilateral,
    1: _rectangle,
    2: _ellipse,
    3: _star,
    4: _circle,
    5: _blobs,
}
_MULTI_PART = 5


def _clip(poly: np.ndarray, size: int) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon to the image square [0, size]^2."""
    for axis, bound, keep_below in ((0, 0.0, False), (0, size, True), (1, 0.0, False), (1, size, True)):
        if len(poly) == 0:
            break
        inside = poly[:, axis] <= bound if keep_below else poly[:, axis] >= bound
        out = []
        for i in range(len(poly)):
            cur, prev = poly[i], poly[i - 1]
            if inside[i] != inside[i - 1]:
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append(prev + t * (cur - prev))
            if inside[i]:
                out.append(cur)
        poly = np.array(out).reshape(-1, 2)
    return poly


def _sample_polygons(rng: np.random.Generator, category: int, size: int) -> list[list[float]]:
    """One object's polygons (flat, rounded, clipped); parts that vanish at the border are dropped."""
    diameter = size * rng.uniform(0.05, 0.5)
    r = diameter / 2
    if category == _MULTI_PART:
        r = max(r, 0.12 * size)  # keep each part several pixels wide
    theta = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = rng.uniform(0, size, 2)
    polygons = []
    for part in _SHAPES[category](rng, r):
        clipped = np.round(_clip(part @ rotation.T + centre, size), 1)
        if len(clipped) >= 3 and _shoelace(clipped) >= 1.0:
            polygons.append([float(v) for v in clipped.ravel()])
    return polygons


def _shoelace(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _sample_object(rng: np.random.Generator, category: int, size: int) -> tuple[list[list[float]], dict]:
    """Polygons plus their union RLE, resampled until the object covers at least ``_MIN_AREA`` pixels."""
    for _ in range(100):
        polygons = _sample_polygons(rng, category, size)
        if polygons:
            rle = mask_utils.merge(mask_utils.frPyObjects(polygons, size, size))
            if mask_utils.area(rle) >= _MIN_AREA:
                return polygons, rle
    raise RuntimeError(f"could not place a visible object of category {category} in a {size}px image")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A low-saturation gradient with smooth blotches and clutter lines, so 'not grey' is not enough."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    t = xx * np.cos(angle) + yy * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    ends = rng.uniform(55, 150, (2, 1)) + rng.uniform(-18, 18, (2, 3))
    img = ends[0] * (1 - t[..., None]) + ends[1] * t[..., None]
    cells = int(rng.integers(3, 8))
    blotches = rng.normal(0, 15, (cells, cells, 1)) + rng.normal(0, 5, (cells, cells, 3))
    img += cv2.resize(blotches.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    img = np.ascontiguousarray(img, dtype=np.float32)
    for _ in range(int(rng.integers(0, 6))):
        x1, y1, x2, y2 = (int(v) for v in rng.integers(0, size, 4))
        grey = float(rng.uniform(40, 190))
        cv2.line(img, (x1, y1), (x2, y2), (grey, grey, grey), int(rng.integers(1, 3)))
    return img


def _render(rng: np.random.Generator, size: int, categories: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """An RGB image and its annotations (without ids), sorted and painted largest area first."""
    img = _background(rng, size)
    objects = []
    for category in categories:
        polygons, rle = _sample_object(rng, int(category), size)
        objects.append((int(mask_utils.area(rle)), int(category), polygons, rle))
    objects.sort(key=lambda obj: -obj[0])  # stable: ties keep sampling order
    anns = []
    for area, category, polygons, rle in objects:
        color = np.array(DEMO_COLORS[category]) + rng.uniform(-_COLOR_JITTER, _COLOR_JITTER, 3)
        img[mask_utils.decode(rle).astype(bool)] = color
        coords = np.concatenate([np.reshape(p, (-1, 2)) for p in polygons])
        x0, y0 = coords.min(axis=0)
        x1, y1 = coords.max(axis=0)
        bbox = [round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)]
        anns.append(
            {
                "category_id": category,
                "segmentation": polygons,
                "area": float(area),
                "bbox": bbox,
                "iscrowd": 0,
            }
        )
    light = cv2.resize(rng.normal(0, 0.04, (3, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    img = img * (1 + light[..., None]) + rng.normal(0, 5, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), anns


def _check_args(counts: dict[str, int], size: int, objects_per_image: tuple[int, int], seed: int) -> None:
    if size < MIN_SIZE:
        raise SegkitError(f"demo image size {size} is too small; use at least {MIN_SIZE} pixels")
    for split, n in counts.items():
        if n < (1 if split == "train" else 0):
            raise SegkitError(f"demo num_{split}={n} is invalid; use at least {1 if split == 'train' else 0}")
    lo, hi = objects_per_image
    if lo < 1 or lo > hi:
        raise SegkitError(f"demo objects per image ({lo}, {hi}) is invalid; use 1 <= MIN <= MAX (each image needs one)")
    if seed < 0:
        raise SegkitError(f"demo seed must be >= 0, got {seed}")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def make_demo_dataset(
    out: str | Path,
    num_train: int = 200,
    num_val: int = 50,
    num_test: int = 50,
    size: int = 128,
    objects_per_image: tuple[int, int] = (1, 5),
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Path]:
    """Write ``out/images/{split}/NNNN.jpg`` and ``out/{split}.json``; return the json paths by split.

    Each split has its own random stream (``seed``, split index), so changing ``num_train`` leaves val
    and test unchanged. With at least 6 objects in a split, all six categories occur in it. The old
    jsons are removed first and the new ones written last (train.json very last, atomically), so an
    interrupted run never leaves a json that points at images that are missing or from another run.
    test.json has no ``annotations`` key, like the competition's.
    """
    counts = {"train": num_train, "val": num_val, "test": num_test}
    _check_args(counts, size, objects_per_image, seed)
    out = Path(out)
    try:
        for split in SPLITS:
            (out / "images" / split).mkdir(parents=True, exist_ok=True)
            (out / f"{split}.json").unlink(missing_ok=True)
    except OSError as err:
        raise SegkitError(f"cannot write demo data to {out}: {err.strerror}; choose another output folder") from err

    digits = max(4, len(str(max(counts.values()) - 1)))
    datasets = {}
    with tqdm(total=sum(counts.values()), desc="demo data", unit="img", disable=not progress) as bar:
        for split_index, split in enumerate(SPLITS):
            rng = np.random.default_rng([seed, split_index])
            per_image = rng.integers(objects_per_image[0], objects_per_image[1] + 1, counts[split])
            categories = rng.integers(0, len(DEMO_CATEGORIES), int(per_image.sum()))
            if categories.size >= len(DEMO_CATEGORIES):
                slots = rng.choice(categories.size, len(DEMO_CATEGORIES), replace=False)
                categories[slots] = rng.permutation(len(DEMO_CATEGORIES))
            starts = np.concatenate([[0], np.cumsum(per_image)])
            images, annotations = [], []
            for image_id in range(counts[split]):
                img, anns = _render(rng, size, categories[starts[image_id] : starts[image_id + 1]])
                file_name = f"{split}/{image_id:0{digits}d}.jpg"
                path = out / "images" / file_name
                if not cv2.imwrite(str(path), img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]):
                    raise SegkitError(f"could not write image {path}; check the disk space and permissions")
                images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
                for ann in anns:
                    annotations.append({"id": len(annotations), "image_id": image_id, **ann})
                bar.update()
            data = {
                "info": {"description": "segkit synthetic trash-like demo data", "seed": seed, "size": size},
                "images": images,
            }
            if split != "test":
                data["annotations"] = annotations
            data["categories"] = DEMO_CATEGORIES
            datasets[split] = data

    paths = {split: out / f"{split}.json" for split in SPLITS}
    for split in ("test", "val", "train"):
        _write_json(paths[split], datasets[split])
    return paths
