"""``segkit pseudo-label CONFIG CKPT [CKPT ...] --input X --out pseudo.json``: a teacher's (or an ensemble's)
confident predictions of unlabelled images as a COCO json that trains a student (docs/pseudo_labels.md).

Confidence is the merged max probability; pixels below the threshold (``--threshold``, or one per class with
``--class-balanced``) and regions under ``--min-area`` pixels become ignore. Images of the config's validation
split are refused (same file or same content) unless ``--allow-val``. CONFIG is the training config: its
training json gives the categories, its validation split the leak guard; ensemble, TTA and window options
are those of ``segkit infer-tta``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segkit.cli.common import add_config_args, add_debug_flag, guarded, load_cli_config
from segkit.cli.prediction_args import (
    add_prediction_args,
    batch_size,
    describe,
    ensemble_weights,
    slide_window,
    tta_spec,
)
from segkit.errors import SegkitError
from segkit.paths import check_output_file

if TYPE_CHECKING:
    from segkit.config import Config
    from segkit.inference.pseudo_label import Rule
    from segkit.inference.sources import ImageSource

DEFAULT_THRESHOLD = 0.9


def build_parser() -> argparse.ArgumentParser:
    usage = ("segkit pseudo-label CONFIG CKPT [CKPT ...] --input IMAGE_DIR|COCO_JSON|IMAGE --out PSEUDO.json "
             "[--threshold T | --class-balanced P] [--min-area N] [--report REPORT.md] [options]")
    parser = argparse.ArgumentParser(prog="segkit pseudo-label", description=__doc__, usage=usage,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, "the training config (categories from its training json, leak guard from its "
                            "validation split)")
    parser.add_argument("checkpoints", nargs="+", metavar="CKPT", help="the teacher; several = an ensemble")
    parser.add_argument("--input", required=True, metavar="IMAGE_DIR|COCO_JSON|IMAGE",
                        help="the unlabelled images: a folder, a COCO json (only 'images' needed) or one image")
    parser.add_argument("--out", required=True, metavar="PSEUDO.json", help="the pseudo-label COCO json to write")
    parser.add_argument("--threshold", metavar="T", help=f"keep pixels whose confidence is at least T, 0 < T < 1 "
                        f"(default {DEFAULT_THRESHOLD} unless --class-balanced)")
    parser.add_argument("--class-balanced", metavar="P", help="per class, keep the most confident fraction P of "
                        "its predicted pixels, 0 < P <= 1 (CBST)")
    parser.add_argument("--min-area", default="0", metavar="N",
                        help="connected regions of a class smaller than N pixels become ignore (default 0: off)")
    parser.add_argument("--report", metavar="REPORT.md", help="write the per-class table and REPORT_confidence.png")
    parser.add_argument("--allow-val", action="store_true",
                        help="pseudo-label images of the config's validation split anyway (a validation leak)")
    add_prediction_args(parser, "8 on CUDA, 2 on the CPU")
    parser.add_argument("--recursive", action="store_true", help="folder input: include sub-folders")
    parser.add_argument("--img-dir", metavar="DIR", help="COCO input: the folder its file_name entries are relative "
                        "to (default: <json folder>/<data.img_dir>)")
    parser.add_argument("--on-bad-image", default="error", metavar="error|skip",
                        help="an unreadable input stops the run (error, default) or is left out (skip)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out / --report")
    add_debug_flag(parser)
    return parser


def parse_rule(args: argparse.Namespace) -> Rule:
    from segkit.inference.pseudo_label import Rule

    if args.threshold is not None and args.class_balanced is not None:
        raise SegkitError("give --threshold or --class-balanced, not both")
    min_area = _number(args.min_area, "--min-area", int)
    if min_area < 0:
        raise SegkitError(f"--min-area {args.min_area}: give a pixel count >= 0")
    if args.class_balanced is not None:
        fraction = _number(args.class_balanced, "--class-balanced", float)
        if not 0 < fraction <= 1:
            raise SegkitError(f"--class-balanced {args.class_balanced}: the kept fraction must lie in (0, 1]")
        return Rule(class_balanced=fraction, min_area=min_area)
    threshold = DEFAULT_THRESHOLD if args.threshold is None else _number(args.threshold, "--threshold", float)
    if not 0 < threshold < 1:
        raise SegkitError(f"--threshold {args.threshold}: the confidence threshold must lie in (0, 1)")
    return Rule(threshold=threshold, min_area=min_area)


def _number(text: str, flag: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise SegkitError(f"{flag} {text!r}: expected {'an integer' if kind is int else 'a number'}") from None


def _check_outputs(args: argparse.Namespace) -> None:
    """Before anything is loaded: the outputs, writable, and not existing unless --overwrite."""
    from segkit.inference.pseudo_report import figure_path

    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise SegkitError(f"--out {out}: the pseudo-labels are a COCO json; give a path ending in .json")
    outputs = [(out, "--out")] + ([(Path(args.report), "--report"), (figure_path(args.report), "--report")]
                                  if args.report else [])
    for path, flag in outputs:
        check_output_file(path, flag)
        if path.exists() and not args.overwrite:
            raise SegkitError(f"{path} already exists; pass --overwrite to replace it")


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    rule = parse_rule(args)
    spec, window = tta_spec(args), slide_window(args)
    weights = ensemble_weights(args, len(args.checkpoints))
    forward_batch = batch_size(args, None)
    _check_outputs(args)
    cfg = load_cli_config(args)

    from segkit.data.classes import class_category_ids, class_index_map
    from segkit.data.file_hashes import FileHashes
    from segkit.data.leak_guard import ImageSet, hash_cache_root
    from segkit.inference.checkpoints import build_ensemble, predictor_for, read_checkpoints
    from segkit.inference.sources import open_source

    train_json, categories = training_categories(cfg)
    classes, cat_to_index = class_index_map(categories, cfg.data.classes, where="data.classes",
                                            ignore_index=cfg.data.ignore_index)
    loaded = read_checkpoints(args.checkpoints, cfg)
    ensemble = build_ensemble(loaded, weights, classes, f"{train_json}'s categories (the training json)")
    img_root = _img_root(args, cfg)
    source = open_source(args.input, args.on_bad_image, args.recursive, img_dir=img_root)
    if source.categories is not None:
        own = class_index_map(source.categories, cfg.data.classes, where="data.classes",
                              ignore_index=cfg.data.ignore_index)[0]
        if own != classes:
            raise SegkitError(f"--input {args.input}: its categories give the classes {own[1:]}, the training json "
                              f"{train_json} gives {classes[1:]}; pseudo-label with a config of the same categories")
    names = [image.name for image in source.images]
    images = ImageSet(img_root, names, f"--input {args.input}")
    hashes = FileHashes(hash_cache_root(cfg.data), progress=not args.no_progress)
    digests = dict(zip(names, hashes.digests(img_root, names)))
    if not args.allow_val:
        _refuse_validation_images(cfg, images, hashes, digests)
    predictor = predictor_for(ensemble, tta=spec, window=window, batch_size=forward_batch)
    started = time.perf_counter()
    teacher = teacher_record(args, cfg, loaded.states, predictor, weights, img_root, rule)
    stats = _run(args, cfg, source, predictor, rule, categories, class_category_ids(cat_to_index, len(classes)),
                 digests, teacher)
    how = describe(spec, predictor.window, len(args.checkpoints))
    print(f"pseudo-labelled {stats.images} image(s) ({rule.describe()}{', ' + how if how else ''}) in "
          f"{time.perf_counter() - started:.1f} s: kept {int(stats.kept.sum())} of {int(stats.predicted.sum())} "
          f"pixels; {len(stats.empty)} image(s) with nothing confident")
    from segkit.inference.pseudo_report import class_table

    print(class_table(stats, rule.min_area))
    print(f"wrote {args.out}" + (f", {args.report}" if args.report else ""))
    print(f"train on it with: data.train.sources=[..., dict(ann={_config_path(Path(args.out), cfg)!r}, "
          f"img_dir={_config_path(img_root, cfg)!r}, weight=1.0)]")
    return 0


def training_categories(cfg: Config) -> tuple[Path, list[dict]]:
    """The training json (``data.train.ann``, or the first of ``data.train.sources``) and its categories."""
    from segkit.data.json_file import read_json_object
    from segkit.data.multi_source import source_specs

    spec = source_specs(cfg.data, cfg.source)[0]
    path = Path(cfg.data.root) / spec.ann
    categories = read_json_object(path).get("categories")
    if not isinstance(categories, list) or not categories:
        raise SegkitError(f"{spec.key}: {path} has no 'categories'; the pseudo-labels copy the training json's "
                          "categories")
    return path, categories


def _img_root(args: argparse.Namespace, cfg: Config) -> Path:
    """The folder the written ``file_name`` entries are relative to (the pseudo source's ``img_dir``)."""
    given = Path(args.input)
    if given.is_dir():
        return given
    if given.suffix.lower() == ".json":
        return Path(args.img_dir) if args.img_dir else given.parent / cfg.data.img_dir
    return given.parent


def _refuse_validation_images(cfg: Config, images: Any, hashes: Any, digests: dict[str, str]) -> None:
    from segkit.data.json_file import read_json_object
    from segkit.data.leak_guard import HeldOut, ImageSet

    val_json = Path(cfg.data.root) / cfg.data.val.ann
    if not val_json.is_file():
        raise SegkitError(f"data.val.ann: {val_json} not found, so the images cannot be checked against the "
                          "validation split; fix data.root/data.val.ann or pass --allow-val")
    listed = read_json_object(val_json).get("images")
    names = [img["file_name"] for img in listed if isinstance(img, dict) and isinstance(img.get("file_name"), str)] \
        if isinstance(listed, list) else []
    val_root = Path(cfg.data.root) / cfg.data.img_dir
    found = [name for name in names if (val_root / name).is_file()]
    if names and not found:
        raise SegkitError(f"data.val.ann: none of the {len(names)} images of {val_json} is under {val_root}, so the "
                          "inputs cannot be checked against them; fix data.img_dir or pass --allow-val")
    held_out = HeldOut(ImageSet(val_root, found, f"data.val.ann ({val_json})"), hashes)
    leaks = held_out.leaks(images, [digests[name] for name in images.names])
    if leaks:
        raise SegkitError(f"{held_out.describe(leaks, images)}; their pseudo-labels would make the validation score "
                          "lie: leave them out of --input, or pass --allow-val if you really mean it")


def _run(args: argparse.Namespace, cfg: Config, source: ImageSource, predictor: Any, rule: Rule,
         categories: list[dict], category_ids: list[int], digests: dict[str, str], teacher: dict[str, Any]) -> Any:
    """Predict, threshold and write; the json and the report appear only when everything succeeded."""
    from segkit.inference.pseudo_label import PseudoLabelWriter, confidence_maps, pseudo_label
    from segkit.inference.pseudo_report import stage_report

    out = Path(args.out)
    staged = []
    with tempfile.TemporaryDirectory(prefix=".segkit-pseudo-", dir=out.parent) as work:
        writer = PseudoLabelWriter(out, categories, category_ids, cfg.data.ignore_index, Path(work), teacher, digests)
        try:
            maps = confidence_maps(predictor, source, cfg.data.num_workers)
            stats = pseudo_label(maps, predictor.classes, rule, cfg.data.ignore_index, writer, Path(work),
                                 total=len(source), progress=not args.no_progress)
            if stats.images == 0:
                raise SegkitError(f"--input {args.input}: no image could be decoded ({len(source.skipped)} skipped)")
            if args.report:
                how = describe(predictor.tta, predictor.window, len(args.checkpoints)) or "one view, whole image"
                header = [str(out), f"teacher: {', '.join(args.checkpoints)}",
                          f"input: {args.input} ({stats.images} images)", f"rule: {rule.describe()}",
                          f"predictions: {how}"]
                staged = stage_report(args.report, stats, header, rule.min_area)
            writer.commit()
            for file in staged:
                file.commit(sync=False)
        except BaseException:
            writer.abort()
            for file in staged:
                file.abort()
            raise
    if source.skipped:
        print(f"segkit: warning: skipped {len(source.skipped)} unreadable input(s), first: "
              f"{source.skipped[0]['path']} ({source.skipped[0]['reason']})", file=sys.stderr)
    return stats


def teacher_record(args: argparse.Namespace, cfg: Config, states: list[tuple[Path, dict[str, Any]]], predictor: Any,
                   weights: list[float] | None, img_root: Path, rule: Rule) -> dict[str, Any]:
    """The json's ``info``: which teacher, on what, how. Files by SHA-256 (a path can be overwritten later),
    configs by hash (``config_hash`` equals the teacher run's ``summary.json``); paths as given and absolute."""
    from segkit.data.file_hashes import file_sha256
    from segkit.engine.provenance import config_hash

    def where(path: str | Path) -> dict[str, str]:
        return {"path": str(path), "absolute": str(Path(path).resolve())}

    window = predictor.window
    return {
        "description": "segkit pseudo-labels",
        "config": {**where(args.config), "config_hash": config_hash(cfg.to_dict())},
        "checkpoints": [{**where(given), "sha256": file_sha256(path),
                         "config_hash": config_hash(state["config"]) if state.get("config") else None}
                        for given, (path, state) in zip(args.checkpoints, states)],
        "weights": weights,
        "tta": {"mode": predictor.tta.mode, "scales": list(predictor.tta.scales), "merge": predictor.tta.merge},
        "window": {"crop": window.crop, "stride": window.stride} if window is not None else None,
        "input": where(args.input),
        "img_dir": where(img_root),
        "rule": rule.describe(),
        "ignore_index": cfg.data.ignore_index,
    }


def _config_path(path: Path, cfg: Config) -> str:
    """``path`` as a config would write it: relative to ``data.root`` when inside it, else absolute."""
    root = Path(cfg.data.root).resolve()
    resolved = path.resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(resolved)
