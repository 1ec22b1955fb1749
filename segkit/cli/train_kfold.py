"""``segkit train-kfold CONFIG --folds 5``: split ``data.train.ann`` into stratified folds, train one run per
fold into ``<work_dir>/fold<K>/`` (resumable fold by fold; ``--fold K`` for one fold per job), then report the
out-of-fold mIoU from one confusion matrix over every fold's held-out images, per-class OOF IoU and the
folds' spread, and print the ``infer_tta.py`` command that ensembles the fold checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path

from segkit.cli.common import add_config_args, add_debug_flag, guarded, load_cli_config
from segkit.errors import SegkitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit train-kfold", description=__doc__)
    add_config_args(parser, "Python config file; its data.train.ann is split (with --merge-val also data.val.ann)")
    parser.add_argument("--folds", type=int, default=5, help="number of folds (default: 5)")
    parser.add_argument("--fold", type=int, metavar="K", help="train only fold K (0-based); the OOF report follows "
                        "once every fold has finished")
    parser.add_argument("--group-by", metavar="KEY", help="'folder' (directory of file_name) or an image field: "
                        "images sharing it stay in one fold")
    parser.add_argument("--stratify", action=argparse.BooleanOptionalAction, default=True,
                        help="balance each class's images over the folds (default); --no-stratify: random folds")
    parser.add_argument("--merge-val", action="store_true", help="split data.train.ann and data.val.ann together")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    parser.add_argument("--work-dir", help="k-fold root (default: work_dirs/<config name>_kfold)")
    parser.add_argument("--overwrite", action="store_true", help="retrain folds that already hold a run")
    parser.add_argument("--oof-tta", default="none", metavar="none|flip|hvflip|d4",
                        help="TTA of the out-of-fold predictions (default: none, as validation)")
    parser.add_argument("--oof-checkpoint", default="best", metavar="best|last",
                        help="weights of each fold's held-out predictions: best.pth (default; chosen on that same "
                             "held-out fold, so slightly optimistic) or last.pth (no selection on it)")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.folds < 2:
        raise SegkitError(f"--folds {args.folds}: need at least 2 folds")
    if args.fold is not None and not 0 <= args.fold < args.folds:
        raise SegkitError(f"--fold {args.fold}: folds are numbered 0..{args.folds - 1}")
    cfg = load_cli_config(args)

    from segkit.engine.dist import init_distributed, resolve_device, shutdown
    from segkit.evaluation.report import format_table
    from segkit.experiments.kfold_training import FoldPlan, fold_done, train_folds
    from segkit.experiments.oof import OOF_CHECKPOINTS, OOF_DIR, OOF_RECORD, out_of_fold
    from segkit.inference.tta import TTA_MODES, TTASpec

    if args.oof_tta not in TTA_MODES:
        raise SegkitError(f"--oof-tta {args.oof_tta!r}: use one of {', '.join(TTA_MODES)}")
    if args.oof_checkpoint not in OOF_CHECKPOINTS:
        raise SegkitError(f"--oof-checkpoint {args.oof_checkpoint!r}: use one of {', '.join(OOF_CHECKPOINTS)}")
    root = Path(args.work_dir or Path("work_dirs") / f"{Path(args.config).stem}_kfold")
    plan = FoldPlan(root, args.folds, args.seed, args.group_by, args.stratify, args.merge_val)
    dist_info, dist_device = init_distributed(cfg.train.device)
    try:
        device = dist_device or resolve_device(cfg.train.device)
        which = [args.fold] if args.fold is not None else list(range(args.folds))
        train_folds(cfg, plan, which, device, overwrite=args.overwrite, progress=not args.no_progress,
                    dist=dist_info)
        if not dist_info.is_main:
            return 0
        finished = [k for k in range(args.folds) if fold_done(plan, k)]
        left = [k for k in range(args.folds) if k not in finished]
        if left:
            print(f"fold(s) {', '.join(map(str, finished)) or 'none'} done in {root}; still to train: "
                  f"{', '.join(map(str, left))} (the out-of-fold report follows when all are done)")
            return 0
        record = out_of_fold(cfg, plan, device, TTASpec(args.oof_tta), progress=not args.no_progress,
                             checkpoint=args.oof_checkpoint)
    finally:
        shutdown()
    oof, spread = record["oof"], record["spread"]
    print(f"out-of-fold metrics over {sum(f['images'] for f in record['folds'])} held-out images of "
          f"{args.folds} folds (one confusion matrix), {_weights_note(args.oof_checkpoint)}:")
    print(format_table(oof))
    print("per fold (held-out mIoU): " + ", ".join(f"fold{f['fold']} {100 * f['mIoU']:.2f}" for f in record["folds"]
                                                     if f["mIoU"] is not None))
    if spread:
        print(f"fold spread: mean {100 * spread['mean']:.2f}, std {100 * spread['std']:.2f}, "
              f"min {100 * spread['min']:.2f}, max {100 * spread['max']:.2f}")
    print(f"predictions in {root / OOF_DIR}/fold<k>/, numbers in {root / OOF_DIR / OOF_RECORD}")
    checkpoints = " ".join(str(plan.fold_dir(k) / "checkpoints" / f"{args.oof_checkpoint}.pth")
                           for k in range(args.folds))
    test_input = Path(cfg.data.root) / cfg.data.test.ann if cfg.data.test.ann else "TEST_IMAGES"
    print("ensemble the folds on the test images with:\n"
          f"  python tools/infer_tta.py {checkpoints} --input {test_input} --tta flip "
          f"--out-dir {root / 'ensemble'} --submission {root / 'submission.csv'}")
    return 0


def _weights_note(checkpoint: str) -> str:
    """Which weights scored the held-out images, and what that means for the number."""
    if checkpoint == "best":
        return ("each fold predicted by its best.pth, chosen on that same held-out fold (slightly optimistic; "
                "--oof-checkpoint last avoids the selection)")
    return "each fold predicted by its last.pth (no checkpoint chosen on the held-out images)"


if __name__ == "__main__":
    raise SystemExit(main())
