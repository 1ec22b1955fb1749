"""k-fold training: one split written once, one ordinary run per fold, each resumable on its own.

Layout under the k-fold root (``work_dirs/<config stem>_kfold`` by default)::

    folds/            train_<k>.json, val_<k>.json, kfold_report.md (segkit.data.kfold), split.json
    fold<k>/          an ordinary run folder (config.py, metrics.jsonl, checkpoints/, tb/, summary.json)
    oof/              out-of-fold predictions and oof.json (segkit.experiments.oof)

``split.json`` records what the folds were drawn from and how; running again with other options or an edited
source json is refused instead of mixing two splits. A fold is finished only when its ``fold_done.json`` says
so: written atomically after training returned, ``best.pth``, ``last.pth`` and ``summary.json`` exist, so a
kill at any earlier moment leaves a fold that resumes from its ``last.pth``. The record holds the fold's
*settings*: the config keys that decide what it learns (not the device, the loader workers, the test split,
logging, or where the folders are: the split's jsons are named relative to the k-fold root). A finished fold
is skipped when they match, and refused with the differing keys named when not, so the command can be re-run
after a kill, or split over jobs with ``--fold K`` on machines whose paths differ.
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
from segkit.errors import SegkitError

SPLIT_RECORD = "split.json"
DONE_RECORD = "fold_done.json"
# Config keys (and sections) that say where, how fast or how verbosely a fold runs, not what it learns.
_NOT_SETTINGS = ("work_dir", "data.root", "data.num_workers", "data.cache", "data.cache_dir", "data.test", "test",
                 "train.device", "train.log_interval", "train.checkpoint_iters", "train.keep_last",
                 "evaluation.panels", "evaluation.worst_k", "evaluation.class_images", "evaluation.hparams")
_SHOWN_KEYS = 4  # differing settings named in a refusal
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
        # The jsons are known by content: the same data under another path (another machine) is the same split.
        changed = [f"{k}={before.get(k)!r} -> {v!r}" for k, v in record.items()
                   if k not in ("ann", "merged_ann") and before.get(k) != v]
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


def fold_settings(cfg: Config, plan: FoldPlan, k: int) -> dict[str, Any]:
    """What decides fold ``k``'s result, as ``{dotted key: value}``: its config without the keys of
    ``_NOT_SETTINGS``, the split's jsons relative to the k-fold root, tuples as lists (as JSON stores them)."""
    fold = fold_config(cfg, plan, k).to_dict()
    fold["data"]["train"]["ann"], fold["data"]["val"]["ann"] = f"folds/train_{k}.json", f"folds/val_{k}.json"
    flat = _flatten(json.loads(json.dumps(fold, default=str)))
    return {key: value for key, value in flat.items()
            if not any(key == skip or key.startswith(skip + ".") for skip in _NOT_SETTINGS)}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def fold_done(plan: FoldPlan, k: int, cfg: Config | None = None) -> bool:
    """True when fold ``k``'s completion record exists; with ``cfg``, also that the fold had these settings.

    A finished fold trained with other settings is an error naming the keys, not silently kept.
    """
    record_file = plan.fold_dir(k) / DONE_RECORD
    if not record_file.is_file():
        return False
    if cfg is not None:
        before = json.loads(record_file.read_text(encoding="utf-8"))["settings"]
        now = fold_settings(cfg, plan, k)
        differ = [f"{key}: {before.get(key, '(unset)')!r} -> {now.get(key, '(unset)')!r}"
                  for key in sorted(before.keys() | now.keys()) if before.get(key) != now.get(key)]
        if differ:
            more = f" and {len(differ) - _SHOWN_KEYS} more" if len(differ) > _SHOWN_KEYS else ""
            raise SegkitError(f"{plan.fold_dir(k)}: this fold finished with other settings "
                              f"({'; '.join(differ[:_SHOWN_KEYS])}{more}); pass --overwrite to retrain the folds, "
                              "or use another --work-dir")
    return True


def _record_done(plan: FoldPlan, k: int, cfg: Config, summary: dict[str, Any]) -> None:
    """Written last: a fold whose run returned, with its checkpoints in place, is finished."""
    run = plan.fold_dir(k)
    for name in ("last.pth", "best.pth"):
        if not (run / "checkpoints" / name).is_file():
            raise SegkitError(f"{run}: the fold trained but left no checkpoints/{name} (did it ever validate? check "
                              "train.val_interval against train.epochs); the out-of-fold report needs it")
    write_json(run / DONE_RECORD, {"fold": k, "best_mIoU": summary.get("best_mIoU"),
                                   "best_epoch": summary.get("best_epoch"), "settings": fold_settings(cfg, plan, k)})


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
        if overwrite and dist.is_main:
            (run / DONE_RECORD).unlink(missing_ok=True)
        started = (run / "checkpoints" / "last.pth").is_file() and not overwrite
        _log.info("fold %d/%d: %s into %s", k, plan.folds, "resuming" if started else "training", run)
        summary = train_run(fold, run, device, resume="auto" if started else None, overwrite=overwrite,
                            progress=progress, dist=dist)
        if dist.is_main:
            _record_done(plan, k, cfg, summary)
        barrier()
