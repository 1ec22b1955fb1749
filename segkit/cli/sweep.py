"""``segkit sweep CONFIG --grid KEY=V1,V2 [--grid ...] --seeds N --work-dir DIR``: every combination of the
grid values (an arm) x every seed as its own run in ``DIR/<arm>/seed<k>``, resumable run by run; then the
arm table (mean ± std, min/max over seeds of mIoU, mBoundaryIoU and per-class IoU, the differing keys as
columns) printed and written to DIR. ``--eval-tta none,flip,...`` evaluates each finished run's best.pth under
each test-time augmentation (no retraining) and adds the arm x TTA table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segkit.cli.common import add_config_args, add_debug_flag, guarded
from segkit.errors import SegkitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit sweep", description=__doc__)
    add_config_args(parser, "Python config file every arm starts from")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="values of one key (Python literals like --set; repeat for a cross product), e.g. "
                             "loss.type=CrossEntropy,Focal")
    parser.add_argument("--arm", action="append", nargs="+", default=[], metavar="NAME KEY=VALUE",
                        help="one named arm on top of the config, e.g. --arm ema \"train.ema={'decay': 0.999}\" "
                             "(repeatable; without --grid the config itself is the arm 'base')")
    parser.add_argument("--seeds", type=int, default=3, help="runs per arm, seed k trains with train.seed + k "
                        "(default: 3)")
    parser.add_argument("--work-dir", required=True, help="sweep folder (DIR/<arm>/seed<k>)")
    parser.add_argument("--eval-tta", metavar="MODES", help="evaluate each finished run under these TTA modes, "
                        "e.g. none,flip,hvflip,d4,flip+scales (+scales: also at 0.75 and 1.25)")
    parser.add_argument("--table-only", action="store_true", help="train nothing: tabulate what has finished")
    parser.add_argument("--best-of", metavar="ARM1,ARM2", help="train nothing: print the arm among these with the "
                        "highest mean mIoU (all seeds finished), for scripts that chain sweeps")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.seeds < 1:
        raise SegkitError(f"--seeds {args.seeds}: give at least 1")
    if args.best_of:
        from segkit.experiments.sweep_report import best_arm, sweep_tables

        print(best_arm(sweep_tables(Path(args.work_dir)), [a.strip() for a in args.best_of.split(",")]))
        return 0
    from segkit.config import load_config
    from segkit.experiments.sweep import Sweep, named_arm, parse_grid, parse_tta, plan_arms

    modes = parse_tta(args.eval_tta) if args.eval_tta else []
    arms = plan_arms([parse_grid(item) for item in args.grid], [named_arm(items) for items in args.arm])
    set_items = list(args.set) + ([f"train.device={args.device}"] if args.device else [])
    load_config(args.config, set_items)  # a bad config or --set fails before anything is written
    sweep = Sweep(Path(args.work_dir), args.config, set_items, arms, args.seeds)

    from segkit.engine.dist import resolve_device
    from segkit.experiments.sweep import evaluate_tta, train_sweep
    from segkit.experiments.sweep_report import sweep_tables, write_tables

    if not args.table_only:
        train_sweep(sweep, resolve_device(sweep.run_config(arms[0], 0).train.device), progress=not args.no_progress)
        evaluate_tta(sweep, modes, progress=not args.no_progress)
    sys.stdout.write(write_tables(sweep_tables(sweep.root)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
