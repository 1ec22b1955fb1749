"""k-fold splits of a COCO json, stratified on the classes each image contains, optionally grouped.

Random k-fold leaves rare classes out of whole folds, which makes per-class scores of those folds
meaningless. Iterative stratification (Sechidis, Tsoumakas & Vlahavas, 2011) handles the multi-label case
(one image holds several classes): the rarest remaining class is placed first, each of its images going
to the fold that still lacks most of that class. With a grouping key (e.g. the folder of ``file_name``:
photos of one scene or one batch), whole groups are the units, so near-duplicate photos never sit on both
sides of a split. Groups differ in size, and the per-class rule above ignores size: on TACO grouped by
folder (15 groups) it gave folds of 201 to 386 images. Groups are therefore placed largest first, each into
the fold where the squared deviation from an even share, summed over the classes and the image count,
grows least (folds of 290 to 319 images, per-class shares closer to even as well).
"""

from __future__ import annotations

import json
import os
import posixpath
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segkit.data.json_file import read_json_object
from segkit.errors import SegkitError
from segkit.paths import output_dir

FOLDER = "folder"  # --group-by value meaning "the directory part of file_name"


def read_coco(path: str | Path) -> dict[str, Any]:
    """A COCO json with checked ``images`` (unique int ids), ``annotations`` and ``categories``.

    The reader of the tools that work on annotation files alone (k-fold, analysis): no image is opened.
    """
    path = Path(path)
    coco = read_json_object(path)
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise SegkitError(f"{path}: missing or non-list {key!r}; expected a COCO json with annotations")
    ids: set[Any] = set()
    for pos, img in enumerate(coco["images"]):
        if not isinstance(img, dict) or type(img.get("id")) is not int:
            raise SegkitError(f"{path}: images[{pos}] needs an integer 'id', got {img!r:.80}")
        if img["id"] in ids:
            raise SegkitError(f"{path}: image id {img['id']} appears twice; image ids must be unique")
        ids.add(img["id"])
    cat_ids = {c.get("id") for c in coco["categories"] if isinstance(c, dict) and type(c.get("id")) is int}
    for pos, ann in enumerate(coco["annotations"]):
        if not isinstance(ann, dict):
            raise SegkitError(f"{path}: annotations[{pos}] is not a dict: {ann!r:.60}")
        for key, known, what in (("image_id", ids, "images"), ("category_id", cat_ids, "categories")):
            if type(ann.get(key)) is not int or ann[key] not in known:
                raise SegkitError(f"{path}: annotations[{pos}] (id={ann.get('id')!r}) has {key}="
                                  f"{ann.get(key)!r:.40}, which is not in '{what}'")
    return coco


def group_keys(images: Sequence[dict[str, Any]], group_by: str | None, where: str = "--group-by") -> list[Any]:
    """One key per image: its own id (no grouping), its ``file_name`` folder, or the value of an image field."""
    if group_by is None:
        return [("image", img["id"]) for img in images]
    keys = []
    for img in images:
        if group_by == FOLDER:
            if not isinstance(img.get("file_name"), str):
                raise SegkitError(f"{where} {FOLDER}: image id {img['id']} has no string 'file_name'")
            keys.append(posixpath.dirname(img["file_name"].replace("\\", "/")))
        elif group_by in img:
            keys.append(json.dumps(img[group_by], sort_keys=True))
        else:
            raise SegkitError(f"{where} {group_by}: image id {img['id']} has no field {group_by!r}; use "
                              f"'{FOLDER}' (the folder part of file_name) or a field every image record has")
    return keys


def assign_folds(coco: dict[str, Any], folds: int, seed: int = 0, group_by: str | None = None,
                 stratify: bool = True) -> list[int]:
    """The validation fold (0..folds-1) of every image, in ``coco["images"]`` order.

    ``stratify=False`` deals the (shuffled) images or groups out by size alone, ignoring their classes.
    """
    images = coco["images"]
    classes_of: dict[int, set[int]] = defaultdict(set)
    for ann in coco["annotations"]:
        classes_of[ann["image_id"]].add(ann.get("category_id"))
    keys = group_keys(images, group_by)
    unit_of_key: dict[Any, int] = {}
    units = [unit_of_key.setdefault(key, len(unit_of_key)) for key in keys]
    if folds < 2:
        raise SegkitError(f"--folds {folds}: need at least 2 folds")
    if group_by is not None and len(unit_of_key) == 1:
        raise SegkitError(f"--group-by {group_by}: all {len(images)} images share one value ({keys[0]!r}), so no "
                          "fold could hold any out; group by a key whose values differ, or drop --group-by")
    if folds > len(unit_of_key):
        what = "groups" if group_by else "images"
        raise SegkitError(f"--folds {folds}: only {len(unit_of_key)} {what} to split; use at most "
                          f"{len(unit_of_key)} folds")
    labels: list[Counter] = [Counter() for _ in unit_of_key]
    sizes = [0] * len(unit_of_key)
    for img, unit in zip(images, units):
        labels[unit].update(classes_of.get(img["id"], ()))
        sizes[unit] += 1
    rng = np.random.default_rng(seed)
    if not stratify:
        fold_of_unit = deal_by_size(sizes, folds, rng)
    elif group_by is None:
        fold_of_unit = stratified_folds(labels, folds, rng)
    else:
        fold_of_unit = balance_groups(labels, sizes, folds, rng)
    return [fold_of_unit[unit] for unit in units]


def deal_by_size(sizes: Sequence[int], folds: int, rng: np.random.Generator) -> list[int]:
    """Units in random order, each into the fold with the fewest images so far (plain random k-fold)."""
    filled = np.zeros(folds)
    fold_of = [-1] * len(sizes)
    for unit in rng.permutation(len(sizes)):
        fold = _pick(rng, -filled)
        fold_of[unit] = fold
        filled[fold] += sizes[unit]
    return fold_of


def stratified_folds(labels: Sequence[Counter], folds: int, rng: np.random.Generator) -> list[int]:
    """Iterative stratification of single images (``labels[i]``: the classes of image ``i``) into folds."""
    order = rng.permutation(len(labels))  # random tie-break rank of each image
    totals: Counter = Counter()
    for counts in labels:
        totals.update(counts)
    want_size = np.full(folds, len(labels) / folds)
    want = {label: np.full(folds, count / folds) for label, count in totals.items()}
    left = dict(totals)
    by_label: dict[Any, list[int]] = defaultdict(list)
    for unit, counts in enumerate(labels):
        for label in counts:
            by_label[label].append(unit)
    fold_of = [-1] * len(labels)

    def place(unit: int, fold: int) -> None:
        fold_of[unit] = fold
        want_size[fold] -= 1
        for label, count in labels[unit].items():
            want[label][fold] -= count
            left[label] -= count

    while any(left.values()):
        rarest = min((n, str(label), label) for label, n in left.items() if n > 0)[2]
        for unit in sorted((u for u in by_label[rarest] if fold_of[u] < 0), key=lambda u: order[u]):
            place(unit, _pick(rng, want[rarest], want_size))
    for unit in sorted((u for u in range(len(labels)) if fold_of[u] < 0), key=lambda u: order[u]):
        place(unit, _pick(rng, want_size))
    return fold_of


def balance_groups(labels: Sequence[Counter], sizes: Sequence[int], folds: int,
                   rng: np.random.Generator) -> list[int]:
    """Groups (``labels[g]``: images per class, ``sizes[g]``: images) largest first into the fold where the
    squared deviation of every class share and of the image share from ``1 / folds`` grows least."""
    names = sorted({label for counts in labels for label in counts}, key=str)
    column = {label: j for j, label in enumerate(names)}
    per_group = np.zeros((len(sizes), len(names) + 1))
    for g, counts in enumerate(labels):
        for label, count in counts.items():
            per_group[g, column[label]] = count
        # The image count weighs as much as all the classes together: fold sizes matter as much as balance.
        per_group[g, -1] = sizes[g]
    totals = per_group.sum(axis=0)
    weights = np.append(np.ones(len(names)), max(len(names), 1)) / np.maximum(totals, 1) ** 2
    filled = np.zeros((folds, len(names) + 1))
    order = rng.permutation(len(sizes))
    fold_of = [-1] * len(sizes)
    for g in sorted(range(len(sizes)), key=lambda g: (-sizes[g], order[g])):
        # Growth of sum_j w_j (filled_j + add_j - total_j / folds)^2 over the folds' own terms, minus constants.
        growth = ((filled - totals / folds) * per_group[g] * weights).sum(axis=1)
        fold = _pick(rng, -growth)
        fold_of[g] = fold
        filled[fold] += per_group[g]
    return fold_of


def _pick(rng: np.random.Generator, *preferences: np.ndarray) -> int:
    """The fold that most lacks the first quantity, ties broken by the next one, then at random."""
    candidates = np.arange(len(preferences[0]))
    for need in preferences:
        values = need[candidates]
        candidates = candidates[values >= values.max() - 1e-9]
    return int(candidates[rng.integers(len(candidates))])


def subset(coco: dict[str, Any], image_ids: set[int]) -> dict[str, Any]:
    """The same json restricted to ``image_ids`` and their annotations; other top-level keys kept."""
    out = dict(coco)
    out["images"] = [img for img in coco["images"] if img["id"] in image_ids]
    out["annotations"] = [ann for ann in coco["annotations"] if ann["image_id"] in image_ids]
    return out


def merge(first: dict[str, Any], second: dict[str, Any], names: tuple[str, str]) -> dict[str, Any]:
    """``first`` plus ``second``; ``second``'s image/annotation ids that clash get the next free ones."""
    cats = [{(c.get("id"), c.get("name")) for c in coco["categories"] if isinstance(c, dict)}
            for coco in (first, second)]
    if cats[0] != cats[1]:
        differ = sorted(cats[0] ^ cats[1], key=str)[:3]
        raise SegkitError(f"{names[1]}: categories differ from {names[0]} (e.g. {differ}); only files with the "
                          "same categories can be merged")
    files = {img.get("file_name") for img in first["images"]}
    for img in second["images"]:
        if img.get("file_name") in files:
            raise SegkitError(f"{names[1]}: image {img.get('file_name')!r} is also in {names[0]}; merging would "
                              "train on it twice (did you pass the same file twice?)")
    image_map = _renumber([img["id"] for img in first["images"]], [img["id"] for img in second["images"]],
                          f"{names[1]}: image")
    ann_map = _renumber([ann.get("id") for ann in first["annotations"]],
                        [ann.get("id") for ann in second["annotations"]], f"{names[1]}: annotation")
    out = dict(first)
    out["images"] = first["images"] + [{**img, "id": image_map[img["id"]]} for img in second["images"]]
    out["annotations"] = first["annotations"] + [
        {**ann, "id": ann_map[ann.get("id")], "image_id": image_map[ann["image_id"]]}
        for ann in second["annotations"]
    ]
    return out


def _renumber(taken: list[Any], incoming: list[Any], what: str) -> dict[Any, Any]:
    """Keep each incoming id unless it is already taken; clashing ones get max+1, max+2, ..."""
    used = set(taken)
    next_id = max((i for i in [*taken, *incoming] if type(i) is int), default=-1) + 1
    mapping = {}
    for old in incoming:
        if old in mapping:
            raise SegkitError(f"{what} id {old!r} appears twice; ids must be unique within a file")
        if old in used or type(old) is not int:
            mapping[old], next_id = next_id, next_id + 1
        else:
            mapping[old] = old
        used.add(mapping[old])
    return mapping


def class_table(coco: dict[str, Any], folds_of_images: list[int], folds: int) -> str:
    """Markdown table: per class, images containing it in each validation fold (and the fold sizes)."""
    names = {c.get("id"): str(c.get("name")) for c in coco["categories"] if isinstance(c, dict)}
    fold_of_id = {img["id"]: f for img, f in zip(coco["images"], folds_of_images)}
    seen: dict[Any, set[int]] = defaultdict(set)
    for ann in coco["annotations"]:
        seen[ann.get("category_id")].add(ann["image_id"])
    header = "| class | images | " + " | ".join(f"fold {k}" for k in range(folds)) + " |"
    lines = [header, "|" + " --- |" * (folds + 2)]
    sizes = Counter(folds_of_images)
    lines.append(f"| *all images* | {len(coco['images'])} | " + " | ".join(str(sizes[k]) for k in range(folds)) + " |")
    for cat_id in sorted(seen, key=lambda c: (-len(seen[c]), names.get(c, str(c)))):
        per_fold = Counter(fold_of_id[i] for i in seen[cat_id])
        lines.append(f"| {names.get(cat_id, cat_id)} | {len(seen[cat_id])} | "
                     + " | ".join(str(per_fold[k]) for k in range(folds)) + " |")
    return "\n".join(lines)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic write (temp file + rename): an interrupted run never leaves half a json behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def kfold_split(ann: str | Path, out: str | Path, folds: int = 5, seed: int = 0, group_by: str | None = None,
                merge_with: str | Path | None = None, stratify: bool = True) -> str:
    """Write ``train_{k}.json``/``val_{k}.json`` (and ``train_all.json``) to ``out``; return the class table.

    With ``merge_with`` the folds are drawn from both files together, the same images as ``train_all.json``.
    """
    coco = read_coco(ann)
    if merge_with is not None:
        coco = merge(coco, read_coco(merge_with), (str(ann), str(merge_with)))
    fold_of = assign_folds(coco, folds, seed, group_by, stratify)
    out = output_dir(out)
    for k in range(folds):
        val_ids = {img["id"] for img, f in zip(coco["images"], fold_of) if f == k}
        write_json(out / f"val_{k}.json", subset(coco, val_ids))
        write_json(out / f"train_{k}.json", subset(coco, {img["id"] for img in coco["images"]} - val_ids))
    if merge_with is not None:
        write_json(out / "train_all.json", coco)
    table = class_table(coco, fold_of, folds)
    (out / "kfold_report.md").write_text(
        f"# {folds}-fold split of {ann}{f' + {merge_with}' if merge_with else ''}\n\nseed {seed}, "
        f"grouped by {group_by or 'image'}{'' if stratify else ', not stratified'}; images of each class per validation fold:\n\n{table}\n",
        encoding="utf-8")
    return table
