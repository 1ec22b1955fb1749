"""COCO categories -> class indices: contiguous by default, or as ``data.classes`` says.

Index 0 is Background (unannotated pixels, and categories that are *dropped*: their annotations are not
painted at all), ``data.ignore_index`` (255 by default) is ignore (excluded from loss and metrics); it must
lie above every class index. ``data.classes`` may be

- ``None``: every category, sorted by id, becomes classes 1..K; a category named ``_background_`` or
  ``background`` (any case; labelme exports one with id 0) is dropped instead;
- a list: class 1, 2, ... in order, each entry a category name or id, or ``{"new name": [names or ids]}``
  to merge several categories into one class; categories left out are dropped;
- a dict ``{category name or id: index}``: indices 1..K without gaps, 0 drops, the ignore index ignores; several
  categories on one index merge (the class takes the first one's name); every category must be listed
  except a background category, which defaults to 0 (a forgotten category is an error, not a silent drop).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from segkit.data.json_file import is_int
from segkit.errors import SegkitError
from segkit.registry import closest

IGNORE_INDEX = 255  # the default data.ignore_index
MAX_CLASSES = 254  # indices 0..253, so that 255 stays free for ignore
BACKGROUND_NAMES = ("_background_", "background")


def check_ignore_index(value: Any, where: str = "data.ignore_index") -> int:
    """The ignore value of uint8 masks: an int in 0..255."""
    if not is_int(value) or not 0 <= value <= 255:
        raise SegkitError(f"{where} must be an int in 0..255 (masks are uint8; default {IGNORE_INDEX}), "
                          f"got {value!r}")
    return int(value)


def class_index_map(
    categories: list[dict], classes: Any = None, where: str = "data.classes", ignore_index: int = IGNORE_INDEX,
    ignore_key: str = "data.ignore_index",
) -> tuple[list[str], dict[int, int]]:
    """Class names (Background first) and ``{category_id: index}`` for every category.

    ``ignore_index`` must not be a class index (``ignore_key`` names it in the error).
    """
    names_by_id = _category_names(categories)
    if classes is None:
        kept = [cat_id for cat_id in sorted(names_by_id) if not _is_background(names_by_id[cat_id])]
        names = ["Background"] + [names_by_id[cat_id] for cat_id in kept]
        cat_to_index = {cat_id: 0 for cat_id in names_by_id} | {cat_id: k + 1 for k, cat_id in enumerate(kept)}
    elif isinstance(classes, Mapping):
        names, cat_to_index = _from_mapping(classes, names_by_id, where, ignore_index)
    elif isinstance(classes, Sequence) and not isinstance(classes, str):
        names, cat_to_index = _from_list(classes, names_by_id, where)
    else:
        raise SegkitError(f"{where} must be None, a list of category names or a {{category: index}} dict, "
                          f"got {classes!r}")
    _check_names(names, where if classes is not None else "categories")
    if ignore_index < len(names):
        raise SegkitError(f"{ignore_key}={ignore_index} is the index of class {names[ignore_index]!r} (classes "
                          f"are 0..{len(names) - 1}); choose a value from {len(names)} to 255 (default "
                          f"{IGNORE_INDEX})")
    return names, cat_to_index


def class_category_ids(cat_to_index: Mapping[int, int], num_classes: int) -> list[int]:
    """The COCO category id that stands for each class index in written files: the smallest category id mapped
    to it (a merged class); the index itself where no category maps to it (Background)."""
    ids = list(range(num_classes))
    for cat_id, index in sorted(cat_to_index.items(), reverse=True):
        if 0 < index < num_classes:
            ids[index] = cat_id
    return ids


def _category_names(categories: list[dict]) -> dict[int, str]:
    names_by_id: dict[int, str] = {}
    for pos, cat in enumerate(categories):
        if not isinstance(cat, dict) or not is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise SegkitError(
                f"categories[{pos}] must be a dict with an integer 'id' and a string 'name', got {cat!r}"
            )
        if cat["id"] in names_by_id:
            raise SegkitError(
                f"category id {cat['id']} appears twice ({names_by_id[cat['id']]!r} and {cat['name']!r}); "
                "category ids must be unique"
            )
        names_by_id[cat["id"]] = cat["name"]
    return names_by_id


def _resolve(ref: Any, names_by_id: dict[int, str], where: str) -> int:
    """A category id from a name or an id, with a hint when it names nothing."""
    if is_int(ref) and ref in names_by_id:
        return ref
    if isinstance(ref, str):
        ids = [cat_id for cat_id, name in names_by_id.items() if name == ref]
        if len(ids) == 1:
            return ids[0]
        if len(ids) > 1:
            raise SegkitError(f"{where}: category name {ref!r} is used by ids {sorted(ids)}; refer to them by id")
        raise SegkitError(f"{where}: no category is named {ref!r}{closest(ref, list(names_by_id.values()))}")
    raise SegkitError(f"{where}: {ref!r} is neither a category name nor one of the category ids "
                      f"{sorted(names_by_id)}")


def _from_list(classes: Sequence[Any], names_by_id: dict[int, str], where: str) -> tuple[list[str], dict[int, int]]:
    if not classes:
        raise SegkitError(f"{where} is an empty list; list the categories to train on, or use None for all")
    names = ["Background"]
    cat_to_index = {cat_id: 0 for cat_id in names_by_id}
    claimed: dict[int, str] = {}
    for pos, entry in enumerate(classes):
        here = f"{where}[{pos}]"
        if isinstance(entry, Mapping):
            if len(entry) != 1:
                raise SegkitError(f"{here}: a merged class is written {{'new name': [categories]}} with one key, "
                                  f"got {dict(entry)!r}")
            ((name, refs),) = entry.items()
            if not isinstance(name, str) or not isinstance(refs, list | tuple) or not refs:
                raise SegkitError(f"{here}: a merged class is written {{'new name': [categories]}}, got "
                                  f"{dict(entry)!r}")
            ids = [_resolve(ref, names_by_id, here) for ref in refs]
        else:
            ids = [_resolve(entry, names_by_id, here)]
            name = names_by_id[ids[0]]
        for cat_id in ids:
            if cat_id in claimed:
                raise SegkitError(f"{here}: category {names_by_id[cat_id]!r} (id {cat_id}) is already in "
                                  f"{claimed[cat_id]}; list each category once")
            claimed[cat_id] = here
            cat_to_index[cat_id] = len(names)
        names.append(name)
    return names, cat_to_index


def _from_mapping(
    classes: Mapping[Any, Any], names_by_id: dict[int, str], where: str, ignore_index: int
) -> tuple[list[str], dict[int, int]]:
    cat_to_index: dict[int, int] = {}
    first_name: dict[int, str] = {}
    for ref, index in classes.items():
        here = f"{where}[{ref!r}]"
        cat_id = _resolve(ref, names_by_id, where)
        if not is_int(index) or not (0 <= index < MAX_CLASSES or index == ignore_index):
            raise SegkitError(f"{here}: index {index!r} must be an int in 0..{MAX_CLASSES - 1} (0 drops the "
                              f"category) or {ignore_index} (data.ignore_index: ignore)")
        if cat_id in cat_to_index:
            raise SegkitError(f"{here}: category {names_by_id[cat_id]!r} (id {cat_id}) is mapped twice")
        cat_to_index[cat_id] = index
        first_name.setdefault(index, names_by_id[cat_id])
    unmapped = [cat_id for cat_id in sorted(names_by_id)
                if cat_id not in cat_to_index and not _is_background(names_by_id[cat_id])]
    if unmapped:
        shown = ", ".join(f"{names_by_id[cat_id]!r} (id {cat_id})" for cat_id in unmapped[:5])
        more = f" and {len(unmapped) - 5} more" if len(unmapped) > 5 else ""
        raise SegkitError(f"{where} does not map the categories {shown}{more}; give each an index "
                          f"(0 drops it, {ignore_index} ignores it)")
    for cat_id in names_by_id:
        cat_to_index.setdefault(cat_id, 0)  # only background categories are left
    used = sorted(set(cat_to_index.values()) - {0, ignore_index})
    if used != list(range(1, len(used) + 1)):
        gap = next(k for k in range(1, len(used) + 2) if k not in used)
        raise SegkitError(f"{where}: class indices must run 1..K without gaps, but {gap} is unused "
                          f"(used: {', '.join(map(str, used))})")
    return ["Background"] + [first_name[k] for k in used], cat_to_index


def _check_names(names: list[str], where: str) -> None:
    if len(names) > MAX_CLASSES:
        raise SegkitError(f"{where}: {len(names) - 1} classes and Background are more than the {MAX_CLASSES} a "
                          f"uint8 mask can hold besides the ignore value; merge categories")
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise SegkitError(
                f"{where}: class name {name!r} is used by classes {seen[name]} and {index} (Background is class "
                "0); metrics are keyed by name, so rename one of the categories"
            )
        seen[name] = index


def _is_background(name: str) -> bool:
    return name.lower() in BACKGROUND_NAMES
