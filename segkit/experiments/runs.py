"""Finished or running training runs read back from their work dirs: resolved config, validations, summary.

A run folder is one that holds ``metrics.jsonl`` or ``summary.json`` next to the ``config.py`` that training
wrote (see docs/architecture.md, "Work dir"). Folders of runs (``work_dirs``, a k-fold parent) and globs
expand to the runs below them, so ``compare_runs.py work_dirs/*`` works on any layout.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segkit.config import load_config
from segkit.engine.work_dir import METRICS
from segkit.errors import SegkitError

SUMMARY = "summary.json"
CONFIG = "config.py"


@dataclass
class Run:
    """One work dir. ``metrics`` holds the validations of the trained weights (not SWA/other tagged lines)."""

    name: str
    path: Path
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    summary: dict[str, Any] | None = None
    extra_metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best(self) -> dict[str, Any] | None:
        """The validation with the highest mIoU (the first of equals, as the trainer picks best.pth)."""
        scored = [m for m in self.metrics if m.get("mIoU") is not None]
        return max(scored, key=lambda m: m["mIoU"]) if scored else None

    @property
    def classes(self) -> list[str]:
        if self.summary and self.summary.get("classes"):
            return list(self.summary["classes"])
        return list(self.metrics[-1]["IoU"]) if self.metrics else []


def is_run(path: Path) -> bool:
    return path.is_dir() and ((path / METRICS).is_file() or (path / SUMMARY).is_file())


def find_runs(patterns: Sequence[str], left_out: list[Path] | None = None) -> list[Run]:
    """Runs named by paths or globs, in the order given (folders of runs: their runs, sorted by path).

    Folders found below a pattern that hold a ``config.py`` but no validation (a run that crashed or stopped
    before validating) are appended to ``left_out``, for the caller to name, instead of vanishing silently.
    """
    paths: list[Path] = []
    started: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise SegkitError(f"{pattern}: no such folder; give run folders (work_dirs/<run>) or a glob")
        for match in matches:
            found = list(_runs_below(Path(match), started))
            if not found and not glob.has_magic(pattern):
                raise SegkitError(f"{match}: not a run folder (no {METRICS} or {SUMMARY}) and no runs below it")
            paths += [p for p in found if p.resolve() not in {q.resolve() for q in paths}]
    if left_out is not None:
        left_out += started
    if not paths:
        raise SegkitError(f"no run folders match {' '.join(patterns)}; a run folder holds {METRICS}")
    names = run_names(paths)
    return [load_run(path, name) for path, name in zip(paths, names)]


def _runs_below(path: Path, started: list[Path], depth: int = 3) -> Iterable[Path]:
    if not path.is_dir():
        if path.exists():
            return
        raise SegkitError(f"{path}: no such folder; give run folders (work_dirs/<run>) or a glob")
    if is_run(path):
        yield path
        return
    if (path / CONFIG).is_file():
        started.append(path)
        return
    if depth > 0:
        for child in sorted(p for p in path.iterdir() if p.is_dir()):
            yield from _runs_below(child, started, depth - 1)


def run_names(paths: Sequence[Path]) -> list[str]:
    """The shortest path endings that tell the runs apart (``demo_unet``; ``a/fold0`` beside ``b/fold0``)."""
    parts = [p.resolve().parts for p in paths]
    for depth in range(1, max(len(x) for x in parts) + 1):
        names = ["/".join(x[-depth:]) for x in parts]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every line of a run's ``metrics.jsonl``; a malformed line is an error naming the file and line."""
    file = path / METRICS
    if not file.is_file():
        return []
    records = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise SegkitError(f"{file}:{number}: not a JSON line ({err.msg}); was the file edited?") from err
        if not isinstance(record, Mapping) or "mIoU" not in record or not isinstance(record.get("IoU"), Mapping):
            raise SegkitError(f"{file}:{number}: a metrics line needs 'mIoU' and an 'IoU' dict")
        records.append(dict(record))
    return records


def load_run(path: Path, name: str | None = None) -> Run:
    config_file = path / CONFIG
    if not config_file.is_file():
        raise SegkitError(f"{path}: no {CONFIG} (the resolved config training writes); is it a segkit run?")
    config = load_config(config_file).to_dict()
    lines = read_metrics(path)
    summary = None
    if (path / SUMMARY).is_file():
        try:
            summary = json.loads((path / SUMMARY).read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise SegkitError(f"{path / SUMMARY}: not valid JSON ({err.msg})") from err
    return Run(name=name or path.name, path=path, config=config, summary=summary,
               metrics=[m for m in lines if "model" not in m], extra_metrics=[m for m in lines if "model" in m])
