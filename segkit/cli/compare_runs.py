"""``segkit compare-runs RUN [RUN ...]``: one table of runs — the config keys that differ between them, best
mIoU and per-class IoU at the best validation — with deltas against a baseline and a PNG of curves."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segkit.cli.common import add_debug_flag, guarded
from segkit.errors import SegkitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit compare-runs", description=__doc__)
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run folders (work_dirs/<run>), folders of runs (work_dirs, a k-fold parent) or globs")
    parser.add_argument("--sort", metavar="COLUMN", help="sort by a column: mIoU, a class name or a config key "
                        "(metrics best first)")
    parser.add_argument("--format", default="md", choices=["md", "csv", "html"], help="table format (default: md)")
    parser.add_argument("--baseline", metavar="RUN", help="show the other runs' metrics as differences from this "
                        "run (a folder or a run name from the table; added to the table if not listed)")
    parser.add_argument("--plot", metavar="PNG", help="write val mIoU curves and a per-class IoU heat map here")
    parser.add_argument("--out", metavar="FILE", help="also write the table to FILE")
    parser.add_argument("--group-seeds", action="store_true", help="fold runs in <name>/seed<k> folders (a sweep's "
                        "arms) into one row each: mean ± std, min/max over the seeds (md or csv)")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.group_seeds:
        clash = [flag for flag, used in (("--baseline", args.baseline), ("--sort", args.sort), ("--plot", args.plot),
                                          ("--format html", args.format == "html")) if used]
        if clash:
            raise SegkitError(f"--group-seeds does not combine with {', '.join(clash)}; it writes md or csv")
    from segkit.experiments.compare import compare, render
    from segkit.experiments.runs import find_runs
    from segkit.paths import atomic_file, check_output_file

    for flag, path in (("--out", args.out), ("--plot", args.plot)):
        if path:
            check_output_file(path, flag)  # before reading any run: a bad path fails first, in one line

    patterns = list(args.runs)
    baseline_dir = Path(args.baseline) if args.baseline and Path(args.baseline).is_dir() else None
    if baseline_dir is not None and all(Path(p).resolve() != baseline_dir.resolve() for p in patterns):
        patterns.insert(0, args.baseline)
    left_out: list[Path] = []
    runs = find_runs(patterns, left_out)
    for path in left_out:
        print(f"note: {path}: left out, no metrics.jsonl or summary.json (crashed or stopped before its first "
              "validation?)", file=sys.stderr)
    baseline = args.baseline
    if baseline_dir is not None:
        baseline = next((r.name for r in runs if r.path.resolve() == baseline_dir.resolve()), baseline)
    if args.group_seeds:
        table = _grouped_table(runs, args.format)
        comparison = None
    else:
        comparison = compare(runs, baseline=baseline, sort=args.sort)
        table = render(comparison, args.format)
    sys.stdout.write(table)
    if comparison is not None and args.format == "csv":
        for note in comparison.notes:
            print(f"note: {note}", file=sys.stderr)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(out) as handle:
            handle.write(table)
    if args.plot:
        from segkit.experiments.run_plots import save_comparison_plot

        print(f"plot written to {save_comparison_plot(runs, comparison, args.plot)}", file=sys.stderr)
    return 0


def _grouped_table(runs: list, fmt: str) -> str:
    from segkit.experiments.seeds import group_seeds, render_rows, seed_rows

    classes = [c for c in runs[0].classes if all(c in r.classes for r in runs[1:])]
    return render_rows(*seed_rows(group_seeds(runs), classes), fmt)


if __name__ == "__main__":
    raise SystemExit(main())
