"""Seeded sweeps: every combination of ``--grid`` values (an arm) x every seed is one ordinary run.

Layout under the sweep root::

    sweep.json          the plan: config, --set, grid, arms and their overrides, seeds
    <arm>/seed<k>/      an ordinary run folder (config.py, metrics.jsonl, checkpoints/, summary.json)
                        + done.json (written last, atomically: the run finished) + tta/<mode>.json
    arms.md, arms.csv   mean ± std over seeds per arm (segkit.experiments.seeds)
    tta.md, tta.csv     the same per arm x test-time augmentation, from the runs' best.pth

Seed ``k`` trains with ``train.seed = <the config's seed> + k``. Like k-fold training the sweep is resumable
run by run: a run with ``done.json`` is never redone, one with ``last.pth`` resumes, any other starts afresh;
a run (finished or started) whose recorded config differs from what the sweep would train now is refused,
naming the differing keys, instead of mixing two experiments in one table.
"""

from __future__ import annotations

import ast
import itertools
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from segkit.config import Config, load_config
from segkit.data.kfold import write_json
from segkit.engine.launch import train_run
from segkit.engine.provenance import config_hash
from segkit.errors import SegkitError
from segkit.experiments.compare import flatten, normalised

PLAN = "sweep.json"
DONE = "done.json"
TTA_DIR = "tta"
# Keys that say where or how fast a run went, not what it computed: a finished run is kept when only they change.
NOT_RESULT_KEYS = ("work_dir", "train.device", "train.log_interval", "data.num_workers", "data.cache",
                   "data.cache_dir", "evaluation.panels", "evaluation.worst_k", "evaluation.class_images",
                   "evaluation.hparams")
SCALES_SUFFIX = "+scales"
TTA_SCALES = (0.75, 1.0, 1.25)  # what "<mode>+scales" adds to a view set
_LOG = logging.getLogger("segkit.sweep")


@dataclass(frozen=True)
class Arm:
    """One combination of grid values: a folder name and the ``--set`` items it adds."""

    name: str
    overrides: tuple[tuple[str, Any], ...]

    def set_items(self) -> list[str]:
        return [f"{key}={value!r}" for key, value in self.overrides]


def parse_grid(item: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2`` -> (KEY, [V1, V2]); values are Python literals like ``--set`` (bare words stay strings).

    Commas inside brackets or quotes do not split, so ``loss={'type': 'Combo', 'losses': [...]},{...}`` works.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or not all(key.split(".")) or not raw.strip():
        raise SegkitError(f"--grid {item!r}: expected KEY=V1,V2,... with a dotted key, e.g. "
                          "loss.type=CrossEntropy,Focal")
    try:
        nodes = ast.parse(f"[{raw}]", mode="eval").body.elts  # type: ignore[attr-defined]
        text = f"[{raw}]"
        values = [_literal(node, text) for node in nodes]
    except SyntaxError:
        values = [part.strip() for part in raw.split(",")]
    if len(values) < 1 or any(v == "" for v in values):
        raise SegkitError(f"--grid {item!r}: empty value; give V1,V2,... after '='")
    if len({repr(v) for v in values}) != len(values):
        raise SegkitError(f"--grid {item!r}: a value is listed twice")
    return key, values


def _literal(node: ast.expr, text: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.get_source_segment(text, node)


def named_arm(items: Sequence[str]) -> Arm:
    """``--arm NAME KEY=VALUE ...``: one arm on top of the config (values as in ``--set``)."""
    name, *settings = items
    if not settings or _slug(name) != name:
        raise SegkitError(f"--arm {' '.join(items)!r}: expected a folder-safe NAME then KEY=VALUE items, e.g. "
                          "--arm ema \"train.ema={'decay': 0.999}\"")
    overrides = []
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or not key or not all(key.split(".")):
            raise SegkitError(f"--arm {name}: {item!r} is not KEY=VALUE with a dotted key")
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        overrides.append((key.strip(), value))
    return Arm(name, tuple(overrides))


def plan_arms(grid: Sequence[tuple[str, list[Any]]], named: Sequence[Arm] = ()) -> list[Arm]:
    """Every grid combination, named by its values (``Focal``; ``Focal__lr=0.001`` for several keys), then the
    named arms; without a grid the config itself is the arm ``base`` beside them."""
    keys = [k for k, _ in grid]
    if len(set(keys)) != len(keys):
        raise SegkitError(f"--grid: a key is given twice ({', '.join(keys)}); list all its values in one --grid")
    arms = []
    for combination in itertools.product(*(values for _, values in grid)):
        overrides = tuple(zip(keys, combination, strict=True))
        if len(keys) == 1:
            name = _slug(combination[0])
        else:
            name = "__".join(f"{k.split('.')[-1]}={_slug(v)}" for k, v in overrides)
        arms.append(Arm(name or "base", overrides))
    arms += named
    names = [a.name for a in arms]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise SegkitError(f"--grid/--arm: arms {', '.join(clash)} would share a folder; make the names differ "
                          "(a grid value's name is its text, a dict's its 'type')")
    return arms


def _slug(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        value = value["type"]
    text = value if isinstance(value, str) else repr(value)
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", text).strip("-")[:60]


@dataclass
class Sweep:
    """A sweep root: the config, ``--set`` items, the arms and the number of seeds."""

    root: Path
    config: str
    set_items: list[str]
    arms: list[Arm]
    seeds: int

    def run_dir(self, arm: Arm, seed: int) -> Path:
        return self.root / arm.name / f"seed{seed}"

    def runs(self) -> list[tuple[Arm, int]]:
        return [(arm, seed) for arm in self.arms for seed in range(self.seeds)]

    def run_config(self, arm: Arm, seed: int) -> Config:
        cfg = load_config(self.config, [*self.set_items, *arm.set_items()])
        cfg.train.seed = cfg.train.seed + seed
        cfg.work_dir = str(self.run_dir(arm, seed))
        return cfg

    def record(self) -> dict[str, Any]:
        return {"config": self.config, "set": self.set_items, "seeds": self.seeds,
                "arms": {a.name: dict(a.overrides) for a in self.arms}}


def config_changes(run: Path, cfg: Config) -> list[str]:
    """Keys (with old -> new values) where the config recorded in ``run`` differs from ``cfg`` in what it trains."""
    before = {k: normalised(v) for k, v in flatten(load_config(run / "config.py").to_dict()).items()}
    now = {k: normalised(v) for k, v in flatten(cfg.to_dict()).items()}
    keys = [k for k in dict.fromkeys([*before, *now]) if not any(k == n or k.startswith(f"{n}.") for n in
                                                                  NOT_RESULT_KEYS)]
    return [f"{k}: {before.get(k, '-')!r} -> {now.get(k, '-')!r}" for k in keys if before.get(k) != now.get(k)]


def run_done(run: Path) -> bool:
    return (run / DONE).is_file() and (run / "checkpoints" / "best.pth").is_file()


def train_sweep(sweep: Sweep, device: torch.device, progress: bool = True) -> None:
    """Train what is missing: finished runs are kept, started ones resume, a changed config is refused."""
    sweep.root.mkdir(parents=True, exist_ok=True)
    planned = [(arm, seed, sweep.run_config(arm, seed)) for arm, seed in sweep.runs()]
    for arm, seed, cfg in planned:  # every refusal before any training
        run = sweep.run_dir(arm, seed)
        if (run / "config.py").is_file() and (run_done(run) or (run / "checkpoints" / "last.pth").is_file()):
            changes = config_changes(run, cfg)
            if changes:
                raise SegkitError(f"{run}: this run {'finished' if run_done(run) else 'started'} with another config "
                                  f"({'; '.join(changes[:4])}{'; ...' if len(changes) > 4 else ''}); use another "
                                  "--work-dir, or delete the run folder to retrain it")
    write_json(sweep.root / PLAN, sweep.record())
    for index, (arm, seed, cfg) in enumerate(planned, start=1):
        run = sweep.run_dir(arm, seed)
        if run_done(run):
            _LOG.info("[%d/%d] %s: finished earlier; kept", index, len(planned), run)
            continue
        started = (run / "checkpoints" / "last.pth").is_file()
        _LOG.info("[%d/%d] %s: %s", index, len(planned), run, "resuming" if started else "training")
        summary = train_run(cfg, run, device, resume="auto" if started else None, overwrite=not started,
                            progress=progress)
        write_json(run / DONE, {"config_hash": config_hash(cfg.to_dict()), "arm": arm.name, "seed": seed,
                                "train_seconds": summary.get("train_seconds")})


def parse_tta(text: str) -> list[str]:
    """``none,flip,hvflip,d4,flip+scales`` -> the modes, each checked."""
    from segkit.inference.tta import TTA_MODES

    modes = [m.strip() for m in text.split(",") if m.strip()]
    for mode in modes:
        if mode.removesuffix(SCALES_SUFFIX) not in TTA_MODES:
            raise SegkitError(f"--eval-tta {mode!r}: use {', '.join(TTA_MODES)}, each optionally with "
                              f"'{SCALES_SUFFIX}' (scales {','.join(map(str, TTA_SCALES))})")
    if not modes:
        raise SegkitError("--eval-tta: give modes such as none,flip,hvflip,d4,flip+scales")
    return modes


def tta_spec(mode: str) -> Any:
    from segkit.inference.tta import TTASpec

    base = mode.removesuffix(SCALES_SUFFIX)
    return TTASpec(base, TTA_SCALES if mode != base else (1.0,))


def evaluate_tta(sweep: Sweep, modes: Sequence[str], progress: bool = True) -> None:
    """Each finished run's ``best.pth`` on the validation split under each mode, once (``tta/<mode>.json``)."""
    from segkit.inference.evaluate import evaluate, prepare_evaluation

    for arm, seed in sweep.runs():
        run = sweep.run_dir(arm, seed)
        if not run_done(run):
            continue
        for mode in modes:
            target = run / TTA_DIR / f"{mode}.json"
            if target.is_file():
                continue
            cfg = load_config(run / "config.py")
            setup = prepare_evaluation(cfg, [run / "checkpoints" / "best.pth"], "val", tta_spec(mode),
                                       boundary_iou=True)
            metrics = evaluate(setup.predictor, setup.loader, setup.evaluator, progress=progress)
            target.parent.mkdir(exist_ok=True)
            write_json(target, {"tta": mode, "checkpoint": "checkpoints/best.pth", **metrics})
            _LOG.info("%s: TTA %s mIoU %.4f", run, mode, metrics["mIoU"] or float("nan"))


def read_tta(run: Path) -> dict[str, dict[str, Any]]:
    """The ``tta/<mode>.json`` records of one run, by mode."""
    folder = run / TTA_DIR
    if not folder.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


def load_sweep(root: Path) -> dict[str, Any]:
    """The plan a sweep recorded (``sweep.json``): what a table of partial results is measured against."""
    path = root / PLAN
    if not path.is_file():
        raise SegkitError(f"{root}: not a sweep folder (no {PLAN}); run tools/sweep.py with --work-dir {root}")
    return json.loads(path.read_text(encoding="utf-8"))
