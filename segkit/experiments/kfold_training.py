"""k-fold training: one split written once, one ordinary run per fold, each resumable on its own.

Layout under the k-fold root (``work_dirs/<config stem>_kfold`` by default)::

    folds/            train_<k>.json, val_<k>.json, kfold_report.md (segkit.data.kfold), split.json
    fold<k>/          an ordinary run folder (config.py, metrics.jsonl, checkpoints/, tb/, summary.json)
    oof/              out-of-fold predictions and oof.json (segkit.experiments.oof)

``split.json`` records what the folds were drawn from and how; running again with other options or an edited
source json is refused instead of mixing two splits. A finished fold (``summary.json`` with the same config
hash) is skipped, a started one resumes from its ``last.pth``, so the command can be re-run after a kill or
split over jobs with ``--fold K``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from segkit.config import Config
from segkit.data.kfold import kfold_split, write_json
from segkit.engine.dist import DistInfo, barrier
from segkit.engine.launch import train_run
from segkit.engine.provenance import config_hash
from segkit.errors import SegkitError

SPLIT_RECORD = "split.json"
_log = logging.getLogger("segkit.kfold")


@dataclass(frozen=True)
class FoldPlan:
    root: Path
    folds: int
    seed: int = 0
    group_by: str | None = None
    stratify: bool = True
    merge_val: bool = False

    @property
    def folds_dir(self) -> Path:
        return self.root / "folds"

    def fold_dir(self, k: int) -> Path:
        return self.root / f"fold{k}"

    def split_files(self, k: int) -> tuple[Path, Path]:
        """(train, held-out) annotation files of fold ``k``."""
        return self.folds_dir / f"train_{k}.json", self.folds_dir / f"val_{k}.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare_folds(cfg: Config, plan: FoldPlan) -> dict[str, Any]:
    """Write the split once (from ``data.train.ann``, plus ``data.val.ann`` with ``merge_val``); check it after."""
    if cfg.data.train.get("sources"):
        raise SegkitError(f"{cfg.source or 'the config'}: k-fold training splits data.train.ann, not "
                          "data.train.sources; run it on a config with one training json")
    root = Path(cfg.data.root)
    source = root / cfg.data.train.ann
    extra = root / cfg.data.val.ann if plan.merge_val else None
    for path, key in ((source, "data.train.ann"), (extra, "data.val.ann")):
        if path is not None and not path.is_file():
            raise SegkitError(f"{key}: annotation file {path} not found; check data.root and {key}")
    record = {"ann": str(source.resolve()), "ann_sha256": _sha256(source),
              "merged_ann": str(extra.resolve()) if extra else None,
              "merged_ann_sha256": _sha256(extra) if extra else None,
              **{k: v for k, v in asdict(plan).items() if k not in ("root", "merge_val")}}
    written = plan.folds_dir / SPLIT_RECORD
    if written.is_file():
        before = json.loads(written.read_text(encoding="utf-8"))
        changed = [f"{k}={before.get(k)!r} -> {v!r}" for k, v in record.items() if before.get(k) != v]
        if changed:
            raise SegkitError(f"{written}: the folds were split differently ({'; '.join(changed)}); use the same "
                              "options and data, or another --work-dir for a new split")
        return record
    kfold_split(source, plan.folds_dir, plan.folds, plan.seed, plan.group_by, extra, plan.stratify)
    write_json(written, record)  # last: a split interrupted before this point is simply redone
    return record


def fold_config(cfg: Config, plan: FoldPlan, k: int) -> Config:
    """The config of fold ``k``: trains on ``train_<k>.json`` and validates on the held-out ``val_<k>.json``."""
    fold = Config(cfg.to_dict(), source=cfg.source)
    train, held_out = plan.split_files(k)
    fold.data.train.ann = str(train.resolve())
    fold.data.val.ann = str(held_out.resolve())
    fold.work_dir = str(plan.fold_dir(k))
    return fold


def fold_done(plan: FoldPlan, k: int, cfg: Config | None = None) -> bool:
    """True when fold ``k`` finished (summary.json and best.pth); with ``cfg``, also that it trained this config.

    A finished fold trained with a different config is an error, not silently kept.
    """
    run = plan.fold_dir(k)
    summary_file = run / "summary.json"
    if not (summary_file.is_file() and (run / "checkpoints" / "best.pth").is_file()):
        return False
    if cfg is not None:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
        wanted = config_hash(fold_config(cfg, plan, k).to_dict())
        if summary.get("config_hash") != wanted:
            raise SegkitError(f"{run}: this fold finished with another config (hash {summary.get('config_hash')}, "
                              f"now {wanted}); pass --overwrite to retrain the folds, or use another --work-dir")
    return True


def train_folds(cfg: Config, plan: FoldPlan, which: list[int], device: torch.device, overwrite: bool = False,
                progress: bool = True, dist: DistInfo | None = None) -> None:
    """Train the folds in ``which``: finished ones are skipped, started ones resume, the rest start."""
    dist = dist or DistInfo()
    if dist.is_main:
        prepare_folds(cfg, plan)
    barrier()
    for k in which:
        fold = fold_config(cfg, plan, k)
        run = plan.fold_dir(k)
        if not overwrite and fold_done(plan, k, cfg):
            _log.info("fold %d: finished earlier (%s); skipped", k, run)
            continue
        started = (run / "checkpoints" / "last.pth").is_file() and not overwrite
        _log.info("fold %d/%d: %s into %s", k, plan.folds, "resuming" if started else "training", run)
        train_run(fold, run, device, resume="auto" if started else None, overwrite=overwrite, progress=progress,
                  dist=dist)
