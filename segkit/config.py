"""Python config files: ``_base_`` inheritance, ``_delete_``, ``--set`` overrides, strict validation, dump.

A config is a Python file of top-level variables. Unlike mmengine's Config, nothing is silently accepted:
every key is checked against ``DEFAULTS`` (the schema) as soon as the file or ``--set`` item that wrote it is
read, so the error names exactly that file and suggests the closest valid key. Values must be plain data
(dict, list, tuple, str, int, float, bool, None), which is what makes ``Config.dump`` reproduce the run.
"""

from __future__ import annotations

import ast
import copy
import os
import traceback
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from pprint import pformat
from typing import Any

from segkit.errors import SegkitError
from segkit.registry import closest

DEFAULTS: dict[str, Any] = dict(
    work_dir=None,  # default chosen by the CLI: work_dirs/<config stem>
    data=dict(
        root="data/trash",
        img_dir="images",
        train=dict(ann="train.json", pipeline=[], cutmix=None, copy_paste=None),
        val=dict(ann="val.json", pipeline=[]),
        test=dict(ann="test.json", pipeline=[]),
        batch_size=8,
        val_batch_size=None,
        num_workers=2,
        mean=(123.675, 116.28, 103.53),  # 0-255 scale, RGB
        std=(58.395, 57.12, 57.375),
        ignore_index=255,
        classes=None,  # None = categories sorted by id; or a list of category names / a {category: index} map
        overlap="area_desc",  # paint order where annotations overlap
        crowd="paint",  # iscrowd regions: "paint" like any object or "ignore" (255)
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
    model=dict(type="EfficientUnet", num_classes=None),
    loss=dict(type="CrossEntropy"),
    optimizer=dict(type="AdamW", lr=1e-3, weight_decay=1e-2),
    scheduler=dict(type="CosineWarmup", warmup_iters=0, min_lr_ratio=0.0),
    train=dict(
        epochs=10,
        val_interval=1,
        seed=42,
        amp=False,
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

_SCALARS = (str, int, float, bool, type(None))
_DELETE = "_delete_"


def _is_int(v: Any) -> bool:
    return type(v) is int


def _positive_int(v: Any) -> bool:
    return _is_int(v) and v > 0


_SPLITS = ("train", "val", "test")
_POSITIVE_TRAIN_INTS = ("epochs", "val_interval", "accumulate", "log_interval")
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "work_dir": (lambda v: v is None or type(v) is str, "a str or None"),
    "data.batch_size": (_positive_int, "a positive int"),
    **{f"evaluation.{k}": (lambda v: type(v) is bool, "True or False")
       for k in ("boundary_iou", "panels", "hparams")},
    **{f"evaluation.{k}": (lambda v: _is_int(v) and v >= 0, "an int >= 0") for k in ("worst_k", "class_images")},
    "evaluation.boundary_dilation": (lambda v: type(v) in (int, float) and 0 < v < 1, "a fraction in (0, 1)"),
    "data.val_batch_size": (lambda v: v is None or _positive_int(v), "a positive int or None"),
    "data.num_workers": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    **{f"data.{s}.pipeline": (lambda v: isinstance(v, list | tuple), "a list") for s in _SPLITS},
    **{f"train.{k}": (_positive_int, "a positive int") for k in _POSITIVE_TRAIN_INTS},
    "train.seed": (_is_int, "an int"),
    "train.amp": (lambda v: type(v) is bool, "True or False"),
    "train.deterministic": (lambda v: type(v) is bool, "True or False"),
    "train.sync_bn": (lambda v: type(v) is bool, "True or False"),
    "train.checkpoint_iters": (lambda v: v is None or _positive_int(v), "a positive int or None"),
    "train.keep_last": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    **{f"train.{k}": (lambda v: v is None or isinstance(v, dict), "a dict or None")
       for k in ("ema", "swa", "early_stop")},
    "optimizer.lr": (lambda v: type(v) in (int, float) and v > 0, "a positive number"),
    **{f"{s}.type": (lambda v: type(v) is str and v != "", "a registered name (str)") for s in OPEN_SECTIONS},
}


def _wrap(value: Any, source: str) -> Any:
    if isinstance(value, Config):  # already wrapped (e.g. while unpickling): keep its own source
        return value
    if isinstance(value, Mapping):
        return Config(value, source=source)
    if isinstance(value, list):
        return [_wrap(v, source) for v in value]
    if isinstance(value, tuple):
        return tuple(_wrap(v, source) for v in value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


class Config(dict):
    """Nested dict with attribute access (``cfg.data.batch_size``); nested dicts (in lists too) are Configs.

    Keys that clash with dict methods (``items``, ``copy``, ...) are reachable with ``cfg["items"]``.
    """

    source: str = ""  # the file the config was loaded from; an attribute, never a key

    def __init__(self, data: Mapping[str, Any] | None = None, *, source: str = "") -> None:
        super().__init__()
        object.__setattr__(self, "source", source)
        for key, value in (data or {}).items():
            self[key] = value

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, _wrap(value, self.source))

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __getattr__(self, name: str) -> Any:
        if name in self:
            return self[name]
        hint = closest(name, [str(k) for k in self])
        raise AttributeError(f"{self.source or 'config'}: no key {name!r}{hint}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "source":
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts/lists/tuples, e.g. to store inside a checkpoint."""
        return _plain(self)

    def get_path(self, dotted: str, default: Any = ...) -> Any:
        """``cfg.get_path("data.train.ann")``; list items by index (``data.train.pipeline.0``).

        Without a default a missing key is a SegkitError naming the key and the closest existing one.
        """
        node: Any = self
        for i, part in enumerate(dotted.split(".")):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list | tuple) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif default is not ...:
                return default
            else:
                where = ".".join(dotted.split(".")[:i]) or "the config"
                names = [str(k) for k in node] if isinstance(node, Mapping) else []
                raise SegkitError(f"{self.source or 'config'}: no key {dotted!r} ({part!r} not in {where})"
                                  f"{closest(part, names)}")
        return node

    def dump(self, path: str | Path) -> None:
        """Write a loadable Python file with every value resolved; ``load_config(path) == self``.

        Written to a temporary file then renamed, so a crash never leaves a half-written config behind.
        """
        path = Path(path)
        lines = [
            f"# Resolved segkit config from {self.source or '<memory>'}: bases, --set overrides and defaults",
            "# are applied. Loading this file gives exactly this config; edit the original, not this copy.",
        ]
        for key, value in self.to_dict().items():
            indent = " " * (len(str(key)) + 3)
            text = pformat(value, width=110 - len(indent), sort_dicts=False).replace("\n", "\n" + indent)
            try:
                same = ast.literal_eval(text) == value
            except (ValueError, SyntaxError):
                same = False
            if not same:
                raise SegkitError(f"{path}: cannot dump {key!r}: {text[:80]!r} is not a Python literal "
                                  "(inf/nan and objects cannot be written)")
            lines.append(f"{key} = {text}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1", "c='x'", "data.root=/abs/path"]`` -> nested dict; later items win.

    Values are Python literals; anything that is not one stays the raw string, so paths need no quotes.
    """
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise SegkitError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. data.batch_size=4")
        raw = raw.strip()
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = raw
        node = result
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return result


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Load a config file: bases in order, the file on top, then ``--set`` items, all over ``DEFAULTS``."""
    source = str(path)
    merged = _load_file(source, chain=())
    for item in overrides:
        _check_section(parse_overrides([item]), DEFAULTS, "", f"{source}: --set {item}")
    merged = _merge(merged, parse_overrides(overrides))
    return Config(_merge(_defaults_for(merged), merged), source=source)


def _load_file(path: str, chain: tuple[tuple[str, str], ...], referenced_by: str = "") -> dict[str, Any]:
    """Execute one file and its bases; ``chain`` holds (resolved, shown) paths of the files including it."""
    file = Path(path)
    resolved = str(file.resolve())
    if any(r == resolved for r, _ in chain):
        shown = [s for _, s in chain] + [path]
        raise SegkitError(f"{path}: _base_ cycle: {' -> '.join(shown)}")
    if not file.is_file():
        by = f" (referenced by _base_ in {referenced_by})" if referenced_by else ""
        raise SegkitError(f"{path}: config file not found{by}")
    if file.suffix != ".py":
        raise SegkitError(f"{path}: config files are Python files ending in .py")
    namespace = _execute(file, path)

    bases = namespace.get("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list | tuple) or not all(isinstance(b, str) for b in bases):
        raise SegkitError(f"{path}: _base_ must be a str or a list of str (paths relative to this file), "
                          f"got {bases!r}")
    merged: dict[str, Any] = {}
    for base in bases:
        base_path = os.path.normpath(os.path.join(os.path.dirname(path), base))
        merged = _merge(merged, _load_file(base_path, chain + ((resolved, path),), referenced_by=path))

    own = {}
    for name, value in namespace.items():
        code_not_data = not _is_data(value) and (callable(value) or isinstance(value, types.ModuleType))
        if name.startswith("_") or code_not_data:
            continue  # helpers, imports, functions and classes are not config
        _check_data(value, name, path)
        own[name] = value
    _check_section(own, DEFAULTS, "", path)
    return _merge(merged, own)


def _execute(file: Path, shown: str) -> dict[str, Any]:
    try:
        code = compile(file.read_bytes(), shown, "exec", dont_inherit=True)
    except OSError as err:
        raise SegkitError(f"{shown}: cannot read config file: {err.strerror}") from err
    except SyntaxError as err:
        raise SegkitError(f"{shown}:{err.lineno}: syntax error: {err.msg}") from err
    except ValueError as err:  # e.g. null bytes
        raise SegkitError(f"{shown}: syntax error: {err}") from err
    namespace: dict[str, Any] = {"__file__": str(file.absolute()), "__name__": "__segkit_config__"}
    try:
        exec(code, namespace)
    except Exception as err:
        lines = [f.lineno for f in traceback.extract_tb(err.__traceback__) if f.filename == shown]
        where = f"{shown}:{lines[-1]}" if lines else shown
        message = " ".join(str(err).split())
        raise SegkitError(f"{where}: error while executing: {type(err).__name__}: {message}") from err
    return namespace


def _is_data(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple) or type(value) in _SCALARS


def _check_data(value: Any, key: str, origin: str) -> None:
    """Only plain data may live in a config: it is what can be dumped, compared and stored in checkpoints."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_data(k, f"{key} (a key)", origin)
            _check_data(v, f"{key}.{k}", origin)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_data(v, f"{key}[{i}]", origin)
    elif type(value) not in _SCALARS:
        raise SegkitError(f"{origin}: {key} is a {type(value).__name__} ({value!r:.60}); configs hold only "
                          "dict, list, tuple, str, int, float, bool, None (name helpers with a leading '_')")


def _check_section(values: Mapping[str, Any], schema: Mapping[str, Any], prefix: str, origin: str) -> None:
    """Reject keys the schema does not know and values of the wrong basic type, naming ``origin``."""
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key == _DELETE and prefix:
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
                _check_section(value, schema[key], f"{dotted}.", origin)
        else:
            _check_values({key: value}, prefix, origin)


def _check_values(values: Mapping[str, Any], prefix: str, origin: str) -> None:
    for key, value in values.items():
        check = _CHECKS.get(f"{prefix}{key}")
        if check and not check[0](value):
            raise SegkitError(f"{origin}: {prefix}{key} must be {check[1]}, got {value!r:.60}")


def _merge(base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``child`` over ``base`` without mutating either; ``_delete_=True`` replaces instead."""
    out = dict(base)
    for key, value in child.items():
        if key == _DELETE:
            continue
        if isinstance(value, Mapping):
            below = out.get(key)
            keep = isinstance(below, Mapping) and not value.get(_DELETE, False)
            out[key] = _merge(below if keep else {}, value)
        else:
            out[key] = value
    return out


def _defaults_for(user: Mapping[str, Any]) -> dict[str, Any]:
    """DEFAULTS minus open sections whose ``type`` the user changed: other classes' arguments can't leak."""
    defaults = copy.deepcopy(DEFAULTS)
    for section in OPEN_SECTIONS:
        mine, default = user.get(section), defaults[section]
        if isinstance(mine, Mapping) and mine.get("type", default["type"]) != default["type"]:
            kept = {k: default[k] for k in _KEPT_ON_TYPE_CHANGE.get(section, ())}
            defaults[section] = {"type": mine["type"], **kept}
    return defaults
