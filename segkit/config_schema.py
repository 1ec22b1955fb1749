"""What a config may contain: every section and key with its default, which sections are open, value checks.

``segkit.config`` reads and merges config files; this module decides what is valid, so the one list of keys
(``DEFAULTS``) is at once the documentation, the defaults and the typo check.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from segkit.errors import SegkitError
from segkit.registry import closest

DEFAULTS: dict[str, Any] = dict(
    work_dir=None,  # default chosen by the CLI: work_dirs/<config stem>
    data=dict(
        root="data/trash",
        img_dir="images",
        # sources: None = the one json data.train.ann; or a list of dict(ann=..., img_dir=..., weight=...)
        train=dict(ann="train.json", sources=None, pipeline=[], cutmix=None, copy_paste=None),
        val=dict(ann="val.json", pipeline=[]),
        test=dict(ann="test.json", pipeline=[]),
        batch_size=8,
        val_batch_size=None,
        num_workers=2,
        mean=(123.675, 116.28, 103.53),  # 0-255 scale, RGB
        std=(58.395, 57.12, 57.375),
        ignore_index=255,  # mask value excluded from loss and metrics (crowd/ignored classes, transform borders)
        classes=None,  # None = categories sorted by id; or a list of category names / a {category: index} map
        overlap="area_desc",  # paint order where annotations overlap
        crowd="paint",  # iscrowd regions: "paint" like any object or "ignore" (ignore_index)
        on_bad_annotation="error",  # or "skip" (with a report of what was skipped)
        cache=True,  # rasterised masks cached on disk
        cache_dir=None,  # None = a folder chosen by segkit.data
    ),
    evaluation=dict(
        boundary_iou=False,  # also Boundary IoU per class (Cheng et al. 2021)
        boundary_dilation=0.02,  # its band width, as a fraction of the image diagonal
        panels=True,  # sample and per-class panels in TensorBoard at each validation
        worst_k=4,  # worst images (per-image mIoU) shown besides the fixed class-covering set
        class_images=3,  # images tiled in each val/class/<name> panel
        hparams=True,  # hyper-parameters and best mIoU to TensorBoard's HParams tab at the end
    ),
    test=dict(
        mode="whole",  # how tools/test.py and infer_tta.py run the model: "whole" image or "slide" windows
        crop=None,  # slide: window side in pixels
        stride=None,  # slide: step between windows in pixels (at most crop)
        resize=None,  # (H, W): predict every image at this size, probabilities resized back to the image's own
    ),
    model=dict(type="EfficientUnet", num_classes=None),
    loss=dict(type="CrossEntropy"),
    optimizer=dict(type="AdamW", lr=1e-3, weight_decay=1e-2),
    scheduler=dict(type="CosineWarmup", warmup_iters=0, min_lr_ratio=0.0),
    train=dict(
        epochs=10,
        val_interval=1,
        seed=42,
        amp=False,  # True (fp16 + GradScaler on CUDA, bf16 on the CPU), "fp16" (CUDA only) or "bf16"
        accumulate=1,
        log_interval=10,
        device="auto",
        deterministic=False,
        grad_clip=None,
        checkpoint_iters=None,  # also save last.pth every N iterations (mid-epoch)
        keep_last=0,  # keep the N most recent checkpoints/epoch_<e>.pth besides last.pth and best.pth
        ema=None,  # dict(decay=0.999): validate and save an exponential moving average of the weights
        swa=None,  # dict(start_epoch=..., lr=...): stochastic weight averaging over the last epochs
        early_stop=None,  # dict(patience=..., min_delta=0.0) on validation mIoU
        sync_bn=False,  # SyncBatchNorm under DDP (ignored in a single process)
    ),
)

# Sections whose keys become constructor arguments: any key is allowed here, the registry checks them.
OPEN_SECTIONS = ("model", "loss", "optimizer", "scheduler")
# Keys of an open default section that survive when the user picks a different ``type``.
_KEPT_ON_TYPE_CHANGE = {"model": ("num_classes",)}

DELETE_KEY = "_delete_"  # dict(_delete_=True, ...) replaces the base dict instead of merging into it


def _is_int(v: Any) -> bool:
    return type(v) is int


AMP_CHOICES = (False, True, "fp16", "bf16")  # train.amp; segkit.engine.precision says what each means


def is_amp_value(v: Any) -> bool:
    return type(v) in (bool, str) and v in AMP_CHOICES


def _positive_int(v: Any) -> bool:
    return _is_int(v) and v > 0


_POSITIVE_TRAIN_INTS = ("epochs", "val_interval", "accumulate", "log_interval")
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "work_dir": (lambda v: v is None or type(v) is str, "a str or None"),
    "data.batch_size": (_positive_int, "a positive int"),
    **{f"evaluation.{k}": (lambda v: type(v) is bool, "True or False")
       for k in ("boundary_iou", "panels", "hparams")},
    **{f"evaluation.{k}": (lambda v: _is_int(v) and v >= 0, "an int >= 0") for k in ("worst_k", "class_images")},
    "evaluation.boundary_dilation": (lambda v: type(v) in (int, float) and 0 < v < 1, "a fraction in (0, 1)"),
    "test.mode": (lambda v: v in ("whole", "slide"), "'whole' or 'slide'"),
    **{f"test.{k}": (lambda v: v is None or _positive_int(v), "a positive int or None") for k in ("crop", "stride")},
    "data.val_batch_size": (lambda v: v is None or _positive_int(v), "a positive int or None"),
    "data.train.ann": (lambda v: v is None or (type(v) is str and v != ""), "a json path (str), or None with "
                       "data.train.sources"),
    "data.num_workers": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    "data.ignore_index": (lambda v: _is_int(v) and 0 <= v <= 255, "an int in 0..255 (masks are uint8)"),
    "data.train.pipeline": (lambda v: isinstance(v, list | tuple), "a list"),
    # Evaluation and prediction run at each image's own size through one Predictor (docs/evaluation.md): a
    # pipeline that only test.py (not infer_tta.py) would apply would make the two disagree.
    **{f"data.{s}.pipeline": (lambda v: isinstance(v, list | tuple) and not v,
                              "[] (evaluation and prediction run at each image's own size; to predict at a fixed "
                              "size set test.resize=(H, W) or pass --resize HxW)") for s in ("val", "test")},
    "test.resize": (lambda v: v is None or (isinstance(v, list | tuple) and len(v) == 2
                                            and all(_positive_int(side) for side in v)), "None or (H, W) in pixels"),
    **{f"train.{k}": (_positive_int, "a positive int") for k in _POSITIVE_TRAIN_INTS},
    "train.seed": (_is_int, "an int"),
    "train.amp": (is_amp_value, "False, True, 'fp16' or 'bf16'"),
    "train.deterministic": (lambda v: type(v) is bool, "True or False"),
    "train.sync_bn": (lambda v: type(v) is bool, "True or False"),
    "train.checkpoint_iters": (lambda v: v is None or _positive_int(v), "a positive int or None"),
    "train.keep_last": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    **{f"train.{k}": (lambda v: v is None or isinstance(v, dict), "a dict or None")
       for k in ("ema", "swa", "early_stop")},
    "optimizer.lr": (lambda v: type(v) in (int, float) and v > 0, "a positive number"),
    **{f"{s}.type": (lambda v: type(v) is str and v != "", "a registered name (str)") for s in OPEN_SECTIONS},
}


# The keys of one data.train.sources entry and their defaults (None: data.img_dir).
SOURCE_DEFAULTS: dict[str, Any] = dict(ann=None, img_dir=None, weight=1.0)
_SOURCE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "ann": (lambda v: type(v) is str and v != "", "a json path (str)"),
    "img_dir": (lambda v: v is None or (type(v) is str and v != ""), "a folder (str) or None"),
    "weight": (lambda v: type(v) in (int, float) and v > 0 and v != float("inf"), "a positive number"),
}


def check_sources(value: Any, where: str, origin: str) -> None:
    """``data.train.sources``: None or a non-empty list of dicts with a json ``ann`` and known keys only."""
    if value is None:
        return
    if not isinstance(value, list | tuple) or not value:
        raise SegkitError(f"{origin}: {where} must be None or a non-empty list like [dict(ann=\"train.json\"), "
                          f"dict(ann=\"pseudo.json\", img_dir=\"test_images\", weight=0.5)], got {value!r:.60}")
    for k, item in enumerate(value):
        here = f"{where}[{k}]"
        if not isinstance(item, Mapping):
            raise SegkitError(f"{origin}: {here} must be a dict like dict(ann=\"train.json\"), got {item!r:.60}")
        for key, entry in item.items():
            if key not in SOURCE_DEFAULTS:
                hint = closest(str(key), list(SOURCE_DEFAULTS)) or f" (keys: {', '.join(SOURCE_DEFAULTS)})"
                raise SegkitError(f"{origin}: unknown key {f'{here}.{key}'!r}{hint}")
            check, expected = _SOURCE_CHECKS[key]
            if not check(entry):
                raise SegkitError(f"{origin}: {here}.{key} must be {expected}, got {entry!r:.60}")
        if "ann" not in item:
            raise SegkitError(f"{origin}: {here} needs 'ann', the COCO json of that source")


def check_section(values: Mapping[str, Any], schema: Mapping[str, Any], prefix: str, origin: str) -> None:
    """Reject keys the schema does not know and values of the wrong basic type, naming ``origin``."""
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key == DELETE_KEY and prefix:
            continue
        if key not in schema:
            hint = closest(str(key), list(schema))
            if not hint:
                helpers = "; helper variables must start with '_'" if not prefix else ""
                hint = f" (valid keys{' in ' + prefix[:-1] if prefix else ''}: {', '.join(schema)}{helpers})"
            raise SegkitError(f"{origin}: unknown key {dotted!r}{hint}")
        if isinstance(schema[key], dict):
            if not isinstance(value, Mapping):
                raise SegkitError(f"{origin}: {dotted} must be a dict, got {value!r:.60}")
            if key in OPEN_SECTIONS and not prefix:
                _check_values(value, f"{dotted}.", origin)
            else:
                check_section(value, schema[key], f"{dotted}.", origin)
        else:
            _check_values({key: value}, prefix, origin)


def _check_values(values: Mapping[str, Any], prefix: str, origin: str) -> None:
    for key, value in values.items():
        if f"{prefix}{key}" == "data.train.sources":
            check_sources(value, "data.train.sources", origin)
            continue
        check = _CHECKS.get(f"{prefix}{key}")
        if check and not check[0](value):
            raise SegkitError(f"{origin}: {prefix}{key} must be {check[1]}, got {value!r:.60}")


def defaults_for(user: Mapping[str, Any]) -> dict[str, Any]:
    """DEFAULTS minus open sections whose ``type`` the user changed: other classes' arguments can't leak."""
    defaults = copy.deepcopy(DEFAULTS)
    for section in OPEN_SECTIONS:
        mine, default = user.get(section), defaults[section]
        if isinstance(mine, Mapping) and mine.get("type", default["type"]) != default["type"]:
            kept = {k: default[k] for k in _KEPT_ON_TYPE_CHANGE.get(section, ())}
            defaults[section] = {"type": mine["type"], **kept}
    return defaults
