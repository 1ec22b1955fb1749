"""``segkit infer-tta [CONFIG] CKPT [CKPT ...] --input X --out-dir DIR``: TTA / ensemble predictions of
unlabelled images as a submission CSV, PNG masks, probabilities and COCO RLE (docs/inference.md).

CONFIG (a ``.py`` file) may be left out when every checkpoint holds its resolved config (segkit checkpoints
do); given, it wins for the run's settings while each checkpoint keeps its own network and normalisation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from segkit.cli.common import add_debug_flag, guarded
from segkit.cli.prediction_args import (
    add_prediction_args,
    batch_size,
    describe,
    ensemble_weights,
    resize_size,
    slide_window,
    tta_spec,
)
from segkit.errors import SegkitError
from segkit.paths import atomic_file, check_output_file, check_output_folder

if TYPE_CHECKING:
    from segkit.config import Config
    from segkit.inference.predictor import Predictor
    from segkit.inference.sources import ImageSource

# What a run writes into --out-dir, and what --overwrite removes (nothing else in the folder is touched).
OWNED = ("masks", "color", "probs", "inference.json", "skipped.json")


def build_parser() -> argparse.ArgumentParser:
    usage = ("segkit infer-tta [CONFIG] CKPT [CKPT ...] --input IMAGE_DIR|COCO_JSON|IMAGE --out-dir DIR "
             "[options]")
    parser = argparse.ArgumentParser(prog="segkit infer-tta", description=__doc__, usage=usage,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="CONFIG|CKPT",
                        help="an optional config (.py), then one or more checkpoints (several = an ensemble)")
    parser.add_argument("--input", required=True, metavar="IMAGE_DIR|COCO_JSON|IMAGE",
                        help="a folder of images, a COCO json (only 'images' needed) or one image")
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="folder for masks/, color/, probs/, "
                        "inference.json (refused if it holds files, unless --overwrite)")
    add_prediction_args(parser, "8 on CUDA, 2 on the CPU")
    parser.add_argument("--submission", metavar="FILE", help="write the competition CSV (image_id,PredictionString)")
    parser.add_argument("--submission-size", type=int, default=256, metavar="N",
                        help="side the submitted masks are resized to, nearest neighbour (default 256)")
    parser.add_argument("--save-png", action="store_true", help="index masks: DIR/masks/<name>.png (uint8 classes)")
    parser.add_argument("--save-color", action="store_true", help="colour masks + legend: DIR/color/<name>.png")
    parser.add_argument("--save-probs", action="store_true", help="float16 probabilities: DIR/probs/<name>.npz")
    parser.add_argument("--coco-results", metavar="FILE", help="COCO results json: one RLE per class per image")
    parser.add_argument("--recursive", action="store_true", help="folder input: include sub-folders")
    parser.add_argument("--img-dir", metavar="DIR", help="COCO input: the folder its file_name entries are relative "
                        "to (default: <json folder>/<data.img_dir>)")
    parser.add_argument("--on-bad-image", default="error", metavar="error|skip",
                        help="a non-image or unreadable input stops the run (error, default) or is left out and "
                             "listed in DIR/skipped.json (skip)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 or auto (default: train.device of the config)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override keys of the run config, e.g. --set train.amp=True data.num_workers=4")
    parser.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar (for log files)")
    add_debug_flag(parser)
    return parser


def _check_outputs(args: argparse.Namespace) -> None:
    """Before anything is loaded: an earlier run's outputs are never silently replaced."""
    out_dir = Path(args.out_dir)
    if not any((args.submission, args.save_png, args.save_color, args.save_probs, args.coco_results)):
        raise SegkitError("nothing to write: add --submission FILE, --save-png, --save-color, --save-probs or "
                          "--coco-results FILE")
    check_output_folder(out_dir, "--out-dir")
    for flag, path in (("--submission", args.submission), ("--coco-results", args.coco_results)):
        if path:
            check_output_file(path, flag)
    if args.overwrite:
        return
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise SegkitError(f"--out-dir {out_dir} already holds files; pass --overwrite to replace the earlier "
                          "outputs or choose another folder")
    for flag, path in (("--submission", args.submission), ("--coco-results", args.coco_results)):
        if path and Path(path).exists():
            raise SegkitError(f"{flag} {path} already exists; pass --overwrite to replace it")


def _split_paths(paths: list[str]) -> tuple[str | None, list[str]]:
    config = paths[0] if paths[0].endswith(".py") else None
    checkpoints = paths[1:] if config else paths
    if not checkpoints:
        raise SegkitError(f"no checkpoint after the config {config}; give CONFIG CKPT [CKPT ...] or CKPT [CKPT ...]")
    return config, checkpoints


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    config, checkpoints = _split_paths(args.paths)
    spec, window, resize = tta_spec(args), slide_window(args), resize_size(args)
    weights = ensemble_weights(args, len(checkpoints))
    forward_batch = batch_size(args, None)
    if args.submission_size < 1:
        raise SegkitError(f"--submission-size {args.submission_size}: give a positive side in pixels, e.g. 256")
    _check_outputs(args)

    from segkit.config import load_config
    from segkit.data.classes import class_category_ids, class_index_map
    from segkit.inference.checkpoints import build_ensemble, predictor_for, read_checkpoints
    from segkit.inference.sources import open_source
    from segkit.inference.submission import check_row_names
    from segkit.inference.writers import check_output_names

    cfg = load_config(config, args.set) if config else None
    loaded = read_checkpoints(checkpoints, cfg, overrides=args.set)
    run_cfg = loaded.config
    if args.device:
        run_cfg.train.device = args.device
    source = open_source(args.input, args.on_bad_image, args.recursive, img_dir=_img_dir(args, run_cfg))
    expected, cat_to_index = None, {}
    if source.categories is not None:
        expected, cat_to_index = class_index_map(source.categories, run_cfg.data.classes, where="data.classes")
    ensemble = build_ensemble(loaded, weights, expected, f"{args.input}'s categories")
    category_ids = class_category_ids(cat_to_index, len(ensemble.classes))
    if args.submission:
        check_row_names([image.name for image in source.images])
    if args.save_png or args.save_color or args.save_probs:
        check_output_names(source.images)
    predictor = predictor_for(ensemble, tta=spec, window=window, batch_size=forward_batch, resize=resize)
    started = time.perf_counter()
    written = _predict_and_write(args, source, predictor, category_ids, run_cfg.data.num_workers)
    _finish(args, source, predictor, written, checkpoints, weights, config, time.perf_counter() - started)
    return 0


def _img_dir(args: argparse.Namespace, cfg: Config) -> Path | None:
    if args.img_dir:
        return Path(args.img_dir)
    given = Path(args.input)
    return given.parent / cfg.data.img_dir if given.suffix.lower() == ".json" else None


def _predict_and_write(args: argparse.Namespace, source: ImageSource, predictor: Predictor, category_ids: list[int],
                       num_workers: int) -> int:
    """Stream every image through the predictor into the writers; aggregate files appear only if all succeed."""
    import torch
    from tqdm import tqdm

    from segkit.inference.submission import SubmissionWriter
    from segkit.inference.writers import CocoResultsWriter, ColorWriter, MaskWriter, ProbabilityWriter
    from segkit.paths import output_dir

    out_dir = output_dir(args.out_dir, flag="--out-dir")
    if args.overwrite:
        for name in OWNED:
            target = out_dir / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    classes = predictor.classes
    writers = []
    if args.save_png:
        writers.append(MaskWriter(out_dir / "masks"))
    if args.save_color:
        writers.append(ColorWriter(out_dir / "color", classes))
    if args.save_probs:
        writers.append(ProbabilityWriter(out_dir / "probs", classes))
    needs_probs = args.save_probs or bool(args.coco_results)
    submission = SubmissionWriter(args.submission, len(classes), args.submission_size) if args.submission else None
    coco = CocoResultsWriter(args.coco_results, category_ids) if args.coco_results else None
    if coco is not None:
        writers.append(coco)
    done: list[str] = []
    try:
        bar = tqdm(total=len(source), desc="infer", unit="img", disable=args.no_progress, dynamic_ncols=True)
        with bar:
            for info, pred in predictor.stream(source.decoded(num_workers)):
                labels = pred.labels.to("cpu", torch.uint8).numpy()
                probs = pred.probs.cpu().numpy() if needs_probs else None
                for writer in writers:
                    writer.write(info, labels, probs)
                if submission is not None:
                    submission.add(info.name, labels)
                done.append(info.name)
                bar.update(1)
        if not done:
            raise SegkitError(f"--input {args.input}: no image could be decoded ({len(source.skipped)} skipped)")
        if submission is not None:
            submission.close(done)
        if coco is not None:
            coco.close()
    finally:
        for aggregate in (submission, coco):
            if aggregate is not None:
                aggregate.abort()
    return len(done)


def _finish(args: argparse.Namespace, source: ImageSource, predictor: Predictor, written: int, checkpoints: list[str],
            weights: list[float] | None, config: str | None, seconds: float) -> None:
    out_dir = Path(args.out_dir)
    window = predictor.window
    if source.skipped:
        (out_dir / "skipped.json").write_text(json.dumps(source.skipped, indent=1) + "\n", encoding="utf-8")
        print(f"segkit: warning: skipped {len(source.skipped)} input(s) that are not readable images, first: "
              f"{source.skipped[0]['path']} ({source.skipped[0]['reason']}); see {out_dir / 'skipped.json'}",
              file=sys.stderr)
    if source.noted > 1:
        print(f"segkit: warning: {source.noted} images came with the warning above (16-bit, little of the range)",
              file=sys.stderr)
    outputs = {"submission": args.submission, "coco_results": args.coco_results,
               **{name: str(out_dir / name) for name, on in (("masks", args.save_png), ("color", args.save_color),
                                                            ("probs", args.save_probs)) if on}}
    record = {"config": config, "checkpoints": list(checkpoints), "weights": weights, "input": args.input,
              "tta": predictor.tta.mode, "scales": list(predictor.tta.scales), "merge": predictor.tta.merge,
              "slide": [window.crop, window.stride] if window else None,
              "resize": list(predictor.resize) if predictor.resize else None, "device": str(predictor.device),
              "classes": predictor.classes, "images": written, "skipped": len(source.skipped),
              "outputs": {k: v for k, v in outputs.items() if v}, "seconds": round(seconds, 1)}
    with atomic_file(out_dir / "inference.json") as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    how = describe(predictor.tta, window, len(checkpoints), predictor.resize)
    print(f"predicted {written} image(s){' (' + how + ')' if how else ''} in {seconds:.1f} s on {predictor.device}")
    for name, path in record["outputs"].items():
        print(f"  {name}: {path}")


if __name__ == "__main__":
    raise SystemExit(main())
