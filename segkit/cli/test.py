"""``segkit test CONFIG CKPT [CKPT ...]``: dataset-level metrics of a checkpoint (or an ensemble) on a labelled split.

Prints the per-class table; ``--out`` writes the metrics (and the confusion matrix, rows = ground truth) as
JSON; ``--show-dir`` writes one panel PNG per image (image | GT | prediction | errors | confidence).
Predictions come from the same ``Predictor`` as ``tools/infer_tta.py``, with the same TTA, scale, merge,
ensemble and sliding-window options (docs/inference.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from segkit.cli.common import add_config_args, add_debug_flag, guarded, load_cli_config
from segkit.cli.prediction_args import (
    add_prediction_args,
    batch_size,
    describe,
    ensemble_weights,
    resize_size,
    slide_window,
    tta_spec,
)
from segkit.paths import check_output_file, check_output_folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit test", description=__doc__)
    add_config_args(parser, "the config the checkpoint was trained with")
    parser.add_argument("checkpoints", nargs="+", metavar="CKPT",
                        help="e.g. work_dirs/demo_unet/checkpoints/best.pth; several = an ensemble")
    parser.add_argument("--split", default="val", choices=["train", "val", "test"],
                        help="labelled split to evaluate: data.<split>.ann (default: val; test needs a data.test.ann "
                             "with annotations)")
    parser.add_argument("--out", help="write the metrics as JSON to this file")
    add_prediction_args(parser, "data.val_batch_size, times the TTA views on CUDA")
    parser.add_argument("--show-dir", metavar="DIR", help="write one panel PNG per image into DIR")
    parser.add_argument("--boundary-iou", action="store_true",
                        help="also compute Boundary IoU per class (on by default when the config's "
                             "evaluation.boundary_iou is; band: evaluation.boundary_dilation of the image diagonal)")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    spec, window, resize = tta_spec(args), slide_window(args), resize_size(args)
    weights = ensemble_weights(args, len(args.checkpoints))
    if args.out:
        check_output_file(args.out, "--out")
    if args.show_dir:
        check_output_folder(args.show_dir, "--show-dir")
    cfg = load_cli_config(args)

    from segkit.data.loader import build_dataloader, build_dataset
    from segkit.engine.dist import resolve_device
    from segkit.evaluation.evaluator import SegEvaluator
    from segkit.evaluation.report import format_table, table_columns
    from segkit.inference.checkpoints import load_ensemble, predictor_for
    from segkit.inference.evaluate import evaluate
    from segkit.visualization.panel_files import PanelFileWriter

    device = resolve_device(cfg.train.device)
    # Every split is evaluated as infer_tta predicts: each image at its own size, no augmentation (val and test
    # pipelines are [] by the schema); a fixed size is the Predictor's --resize / test.resize.
    cfg.data.train.pipeline = []
    cfg.data.train.copy_paste = None
    if args.split == "test":
        _check_labelled(Path(cfg.data.root) / cfg.data.test.ann)
    dataset = build_dataset(cfg, args.split, labelled=True)
    ensemble = load_ensemble(args.checkpoints, cfg, weights, expected_classes=dataset.classes,
                             expected_from=str(dataset.ann_file))
    loader = build_dataloader(cfg, "val", dataset, device=device)
    # By default one forward per loader batch and view (all views at once on CUDA): with one view, exactly the
    # batches training validated.
    views = spec.num_views if device.type == "cuda" else 1
    predictor = predictor_for(ensemble, tta=spec, window=window, device=device,
                              batch_size=batch_size(args, loader.batch_size * views), resize=resize)
    evaluator = SegEvaluator(len(dataset.classes), dataset.classes, cfg.data.ignore_index, device,
                             boundary_iou=args.boundary_iou or cfg.evaluation.boundary_iou,
                             boundary_dilation=cfg.evaluation.boundary_dilation)
    panels = PanelFileWriter(args.show_dir, dataset.classes, cfg.data.ignore_index) if args.show_dir else None
    metrics = evaluate(predictor, loader, evaluator, progress=not args.no_progress,
                       on_batch=panels.observe if panels else None)
    how = describe(spec, predictor.window, len(args.checkpoints), predictor.resize)
    print(f"{', '.join(args.checkpoints)} on {args.split} ({len(dataset)} images{', ' + how if how else ''}):")
    print(format_table(metrics, table_columns(metrics)))
    if panels:
        print(f"{len(panels.written)} panels written to {args.show_dir}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        window_used = predictor.window
        record = {"checkpoint": str(args.checkpoints[0]), "checkpoints": [str(c) for c in args.checkpoints],
                  "weights": weights, "split": args.split, "tta": spec.mode, "scales": list(spec.scales),
                  "merge": spec.merge, "slide": [window_used.crop, window_used.stride] if window_used else None,
                  "resize": list(predictor.resize) if predictor.resize else None,
                  **metrics, "confusion_matrix": evaluator.last_confusion.tolist()}
        out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"metrics written to {out}")
    return 0


def _check_labelled(ann: Path) -> None:
    """``--split test`` evaluates a labelled test json; the usual unlabelled one is predicted, not evaluated."""
    from segkit.data.json_file import read_json_object
    from segkit.errors import SegkitError

    if ann.is_file() and not isinstance(read_json_object(ann).get("annotations"), list):
        raise SegkitError(f"--split test: data.test.ann {ann} has no 'annotations' list, so there is nothing to "
                          "evaluate against; predict it with tools/infer_tta.py, or point data.test.ann at a "
                          "labelled json")


if __name__ == "__main__":
    raise SystemExit(main())
