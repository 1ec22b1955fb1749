"""Albumentations pipelines from config lists such as ``[dict(type="HorizontalFlip", p=0.5)]``.

Names are albumentations' own class names, looked up directly on the ``albumentations`` module, so
its documentation is the reference for every argument. Containers (Compose, OneOf, SomeOf, ...) take
a nested ``transforms=[...]`` list built the same way.

The ignore contract: a transform that creates pixels the image did not have (rotations, scaling down,
perspective, distortions, padding, crops larger than the image, mosaics) fills their mask with ``fill_mask``,
which albumentations defaults to 0, i.e. Background: silent label noise at every border. segkit passes
``fill_mask=ignore_index`` to every such transform unless the config sets ``fill_mask`` itself, so those
pixels count in neither the loss nor the metrics. The dropout family keeps its own meaning of ``fill_mask``
(None: leave the mask alone; MaskDropout: the removed objects become Background).
"""

from __future__ import annotations

import inspect
from typing import Any

import albumentations as A
from pydantic import ValidationError

from segkit.data.classes import IGNORE_INDEX
from segkit.errors import SegkitError
from segkit.registry import check_kwargs, closest

# The loader hands uint8 images to the training device, which normalises them there (cheaper to move
# and to augment); these would hand it floats or tensors instead.
_DEVICE_SIDE = {"Normalize", "ToFloat", "ToTensor", "ToTensorV2"}
_BASES = {"BaseCompose", "BasicTransform", "DualTransform", "ImageOnlyTransform", "Transform3D"}
_ERASING_MODULE = "albumentations.augmentations.dropout"


def build_pipeline(cfg: list[dict] | None, where: str = "data.train.pipeline",
                   ignore_index: int = IGNORE_INDEX) -> A.Compose | None:
    """A Compose over the configured transforms, or None when there are none; ``ignore_index`` is the mask
    fill of transforms that create pixels (see the module docstring)."""
    if not cfg:
        return None
    return A.Compose(_build_list(cfg, where, ignore_index))


def fills_new_pixels(factory: type) -> bool:
    """Whether the transform paints pixels outside the source image with ``fill_mask`` (not the dropouts)."""
    parameter = inspect.signature(factory).parameters.get("fill_mask")
    return parameter is not None and parameter.default is not None and \
        not factory.__module__.startswith(_ERASING_MODULE)


def transform_names() -> list[str]:
    """Every albumentations transform or container a config may name."""
    return sorted(
        name
        for name, obj in vars(A).items()
        if inspect.isclass(obj)
        and issubclass(obj, (A.BasicTransform, A.BaseCompose))
        and name not in _BASES | _DEVICE_SIDE
    )


def _build_list(cfg: Any, where: str, ignore_index: int) -> list[Any]:
    if not isinstance(cfg, (list, tuple)):
        raise SegkitError(f"{where} must be a list of dict(type=...) transforms, got {cfg!r}")
    return [_build_one(item, f"{where}[{i}]", ignore_index) for i, item in enumerate(cfg)]


def _build_one(item: Any, where: str, ignore_index: int) -> Any:
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise SegkitError(f"{where} must be a dict with a string 'type' key, got {item!r}")
    name = item["type"]
    if name in _DEVICE_SIDE:
        raise SegkitError(
            f"{where}: remove {name} from the pipeline; segkit hands uint8 images to the training device "
            "and normalises them there"
        )
    names = transform_names()
    if name not in names:
        raise SegkitError(f"{where}: {name!r} is not an albumentations transform{closest(name, names)}")
    kwargs = {k: v for k, v in item.items() if k != "type"}
    if "transforms" in kwargs:
        kwargs["transforms"] = _build_list(kwargs["transforms"], f"{where}.transforms", ignore_index)
    factory = getattr(A, name)
    check_kwargs(factory, kwargs, where=f"{where} ({name})")
    if fills_new_pixels(factory):
        kwargs.setdefault("fill_mask", ignore_index)
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as err:
        raise SegkitError(f"{where} ({name}): {_first_problem(err)}") from err


def _first_problem(err: Exception) -> str:
    """One line about the first bad argument; pydantic's own first line only counts the errors."""
    cause = err if isinstance(err, ValidationError) else err.__cause__
    if isinstance(cause, ValidationError):
        first = cause.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        return f"{field}: {first['msg']} (got {first['input']!r})"
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
