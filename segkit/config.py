"""Python config files: ``_base_`` inheritance, ``_delete_``, ``--set`` overrides, strict validation, dump.

A config is a Python file of top-level variables. Unlike mmengine's Config, nothing is silently accepted:
every key is checked against ``DEFAULTS`` (the schema, in ``segkit.config_schema``) as soon as the file or
``--set`` item that wrote it is read, so the error names exactly that file and suggests the closest valid key.
Values must be plain data (dict, list, tuple, str, int, float, bool, None), which is what makes
``Config.dump`` reproduce the run.
"""

from __future__ import annotations

import ast
import os
import traceback
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from pprint import pformat
from typing import Any

from segkit.config_schema import DEFAULTS, DELETE_KEY, check_section, defaults_for
from segkit.errors import SegkitError
from segkit.registry import closest

_SCALARS = (str, int, float, bool, type(None))


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
    return _with_overrides(_load_file(source, chain=()), overrides, source)


def config_from_dict(data: Mapping[str, Any], source: str, overrides: Sequence[str] = ()) -> Config:
    """A config stored as a dict (a checkpoint's resolved config), checked against today's schema like a file.

    Keys added to the schema since it was stored get their defaults; ``source`` names it in errors.
    """
    _check_data(dict(data), "config", source)
    check_section(data, DEFAULTS, "", source)
    return _with_overrides(dict(data), overrides, source)


def _with_overrides(merged: dict[str, Any], overrides: Sequence[str], source: str) -> Config:
    for item in overrides:
        check_section(parse_overrides([item]), DEFAULTS, "", f"{source}: --set {item}")
    merged = _merge(merged, parse_overrides(overrides))
    return Config(_merge(defaults_for(merged), merged), source=source)


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
    check_section(own, DEFAULTS, "", path)
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


def _merge(base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``child`` over ``base`` without mutating either; ``_delete_=True`` replaces instead."""
    out = dict(base)
    for key, value in child.items():
        if key == DELETE_KEY:
            continue
        if isinstance(value, Mapping):
            below = out.get(key)
            keep = isinstance(below, Mapping) and not value.get(DELETE_KEY, False)
            out[key] = _merge(below if keep else {}, value)
        else:
            out[key] = value
    return out
