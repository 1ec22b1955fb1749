"""Name -> factory tables so configs can say ``dict(type="Unet", ...)``.

Kept deliberately flat: ``Registry.get(name)`` returns the class or function itself, so the code that
runs is always one lookup away from the config line that chose it.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from segkit.errors import SegkitError


def closest(name: str, candidates: list[str] | Mapping[str, Any], n: int = 3) -> str:
    """A ``did you mean`` hint for an unknown name, or an empty string when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
    return f"; did you mean {', '.join(repr(m) for m in matches)}?" if matches else ""


class Registry:
    """A named table of factories (classes or functions) built from config dicts."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@MODELS.register()`` registers under the object's own name."""

        def add(obj: Callable[..., Any]) -> Callable[..., Any]:
            key = name or obj.__name__
            if key in self._entries and self._entries[key] is not obj:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = obj
            return obj

        return add

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str, where: str = "type") -> Callable[..., Any]:
        if name not in self._entries:
            raise SegkitError(
                f"{where}={name!r} is not a registered {self.kind}{closest(name, self._entries)} "
                f"(registered: {', '.join(self.names())})"
            )
        return self._entries[name]

    def build(self, cfg: Mapping[str, Any], where: str | None = None, **defaults: Any) -> Any:
        """Build ``cfg['type']`` with the remaining keys (over ``defaults``) as keyword arguments.

        Argument names are checked against the factory's signature first, so a typo in a config key
        becomes a one-line error naming the key instead of a TypeError deep inside the constructor.
        """
        where = where or self.kind
        if not isinstance(cfg, Mapping) or "type" not in cfg:
            raise SegkitError(f"{where} must be a dict with a 'type' key, got {cfg!r}")
        kwargs = {**defaults, **{k: v for k, v in cfg.items() if k != "type"}}
        factory = self.get(cfg["type"], where=f"{where}.type")
        check_kwargs(factory, kwargs, where=f"{where} ({cfg['type']})")
        return factory(**kwargs)


def check_kwargs(factory: Callable[..., Any], kwargs: Mapping[str, Any], where: str,
                 strict: bool = False) -> None:
    """Raise a SegkitError naming any keyword the factory does not accept.

    A ``**kwargs`` catch-all accepts everything unless ``strict``: libraries that forward or silently drop
    extra keywords would otherwise hide typos.
    """
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    if not strict and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in kwargs:
        if key not in accepted:
            raise SegkitError(
                f"{where}: unknown argument {key!r}{closest(key, accepted)} (accepted: {', '.join(accepted)})"
            )


MODELS = Registry("model")
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optimizer")
SCHEDULERS = Registry("scheduler")
