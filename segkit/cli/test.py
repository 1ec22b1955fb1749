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

    from segkit.evaluation.report import format_table, table_columns
    from segkit.inference.evaluate import evaluate, prepare_evaluation
    from segkit.visualization.panel_files import PanelFileWriter

    setup = prepare_evaluation(cfg, args.checkpoints, args.split, spec, window, weights,
                               batch_size=batch_size(args, None), resize=resize,
                               boundary_iou=args.boundary_iou or cfg.evaluation.boundary_iou)
    dataset, predictor, evaluator = setup.dataset, setup.predictor, setup.evaluator
    panels = PanelFileWriter(args.show_dir, dataset.classes, cfg.data.ignore_index) if args.show_dir else None
    metrics = evaluate(predictor, setup.loader, evaluator, progress=not args.no_progress,
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


if __name__ == "__main__":
    raise SystemExit(main())
