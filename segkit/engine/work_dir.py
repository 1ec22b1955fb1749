"""The files of a run's work dir that outlive the process: one run per folder, metrics.jsonl, reports, summary."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from segkit.errors import SegkitError

METRICS = "metrics.jsonl"


def resolve_work_dir(config_path: str, configured: str | None, flag: str | None) -> Path:
    """``--work-dir`` wins over the config's ``work_dir``; the default is ``work_dirs/<config stem>``."""
    return Path(flag or configured or Path("work_dirs") / Path(config_path).stem)


def prepare_work_dir(work_dir: Path, resume: str | None, overwrite: bool, delete: bool = True) -> Path | None:
    """Refuse to mix two runs in one folder; return the checkpoint to resume from, if any.

    With ``overwrite`` the earlier run's outputs are removed when ``delete`` (rank 0 only under DDP).
    """
    last = work_dir / "checkpoints" / "last.pth"
    if resume == "auto":
        if not last.is_file():
            raise SegkitError(f"--resume: no checkpoint at {last}; drop --resume to start a new run there")
        return last
    if resume:
        return Path(resume)
    if last.is_file() and not overwrite:
        raise SegkitError(f"{work_dir} already holds a run ({last}); pass --resume to continue it, "
                          "--overwrite to replace it, or --work-dir for a new folder")
    if overwrite and delete:
        for name in ("checkpoints", "tb"):
            shutil.rmtree(work_dir / name, ignore_errors=True)
        for path in [work_dir / n for n in (METRICS, "summary.json", "train.log")] + list(work_dir.glob("skipped_*")):
            path.unlink(missing_ok=True)
    return None


def append_metrics(work_dir: Path, record: dict[str, Any]) -> None:
    """One validation = one JSON line."""
    with open(work_dir / METRICS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def keep_metrics_lines(work_dir: Path, count: int) -> None:
    """Drop the lines a killed run wrote after its checkpoint, which the resumed run will write again."""
    path = work_dir / METRICS
    if path.is_file():
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines(keepends=True) if ln.strip()]
        path.write_text("".join(lines[:count]), encoding="utf-8")


def copy_skip_reports(work_dir: Path, datasets: dict[str, Any], logger: logging.Logger) -> None:
    """Records skipped under ``data.on_bad_annotation='skip'`` are listed in ``skipped_<split>.json``."""
    for split, dataset in datasets.items():
        report = getattr(dataset, "skip_report", None)
        if report is not None:
            target = work_dir / f"skipped_{split}.json"
            shutil.copyfile(report, target)
            logger.warning("data.%s: skipped %d bad annotation record(s); see %s", split, len(dataset.skipped), target)


def write_summary(work_dir: Path, summary: dict[str, Any]) -> None:
    (work_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
