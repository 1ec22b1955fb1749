"""``segkit test CONFIG CHECKPOINT``: dataset-level metrics of a checkpoint on a labelled split.

Prints the per-class table; ``--out`` writes the metrics (and the confusion matrix, rows = ground truth) as
JSON; ``--show-dir`` writes one panel PNG per image (image | GT | prediction | errors | confidence);
``--tta flip|d4`` averages softmax probabilities over flipped/rotated copies (ttach).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from segkit.cli.common import add_config_args, add_debug_flag, guarded, load_cli_config
from segkit.errors import SegkitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit test", description=__doc__)
    add_config_args(parser, "the config the checkpoint was trained with")
    parser.add_argument("checkpoint", help="e.g. work_dirs/demo_unet/checkpoints/best.pth")
    parser.add_argument("--split", default="val", choices=["train", "val"],
                        help="labelled split to evaluate (default: val)")
    parser.add_argument("--out", help="write the metrics as JSON to this file")
    parser.add_argument("--tta", default="none", choices=["none", "flip", "d4"],
                        help="test-time augmentation: none (default), flip (+ horizontal flip) or d4 (8 flips/"
                             "rotations); predictions are the mean softmax probability")
    parser.add_argument("--show-dir", metavar="DIR", help="write one panel PNG per image into DIR")
    parser.add_argument("--boundary-iou", action="store_true",
                        help="also compute Boundary IoU per class (on by default when the config's "
                             "evaluation.boundary_iou is; band: evaluation.boundary_dilation of the image diagonal)")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_cli_config(args)

    from segkit.data.batch import DeviceBatcher
    from segkit.data.loader import build_dataloader, build_dataset
    from segkit.engine.checkpoint import evaluated_weights, load_checkpoint
    from segkit.engine.dist import resolve_device
    from segkit.engine.validation import run_validation
    from segkit.evaluation.evaluator import SegEvaluator
    from segkit.evaluation.report import format_table, table_columns
    from segkit.evaluation.tta import with_tta
    from segkit.models.builder import build_model
    from segkit.visualization.panel_files import PanelFileWriter

    device = resolve_device(cfg.train.device)
    state = load_checkpoint(args.checkpoint)
    # The evaluated split never augments: the train pipeline would make the numbers random.
    cfg.data[args.split].pipeline = cfg.data.val.pipeline
    cfg.data.train.copy_paste = None
    dataset = build_dataset(cfg, args.split)
    if state.get("classes") not in (None, dataset.classes):
        raise SegkitError(f"{args.checkpoint}: trained on classes {state['classes']} but "
                          f"{cfg.data[args.split].ann} has {dataset.classes}; use the matching config/data")
    model = build_model(cfg.model, num_classes=len(dataset.classes)).to(device)
    try:
        model.load_state_dict(evaluated_weights(state))
    except (KeyError, RuntimeError) as err:
        raise SegkitError(f"{args.checkpoint}: weights do not fit model.type={cfg.model.type!r} "
                          f"({str(err).splitlines()[0]}); use the config the checkpoint was trained with") from err
    loader = build_dataloader(cfg, "val", dataset, device=device)
    evaluator = SegEvaluator(len(dataset.classes), dataset.classes, cfg.data.ignore_index, device,
                             boundary_iou=args.boundary_iou or cfg.evaluation.boundary_iou,
                             boundary_dilation=cfg.evaluation.boundary_dilation)
    batcher = DeviceBatcher(device, cfg.data.mean, cfg.data.std)
    panels = PanelFileWriter(args.show_dir, dataset.classes, cfg.data.ignore_index) if args.show_dir else None
    metrics = run_validation(with_tta(model, args.tta), loader, evaluator, batcher, amp=bool(cfg.train.amp),
                             progress=not args.no_progress, on_batch=panels.observe if panels else None)
    tta = "" if args.tta == "none" else f", TTA {args.tta}"
    print(f"{args.checkpoint} on {args.split} ({len(dataset)} images{tta}):")
    print(format_table(metrics, table_columns(metrics)))
    if panels:
        print(f"{len(panels.written)} panels written to {args.show_dir}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        record = {"checkpoint": str(args.checkpoint), "split": args.split, "tta": args.tta, **metrics,
                  "confusion_matrix": evaluator.last_confusion.tolist()}
        out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"metrics written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
