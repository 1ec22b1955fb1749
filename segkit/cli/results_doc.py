"""``segkit results-doc SWEEP [SWEEP ...] --out docs/results.md``: the results page generated from sweep folders
(arms against the first arm with the 2-std rule, per-class IoU, TTA); partial sweeps are marked partial."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segkit.cli.common import add_debug_flag, guarded
from segkit.errors import SegkitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit results-doc", description=__doc__)
    parser.add_argument("sweeps", nargs="+", metavar="SWEEP", help="sweep folders (tools/sweep.py --work-dir)")
    parser.add_argument("--highlight", metavar="CLASS,...", default="",
                        help="classes shown beside mIoU in each arm table (all classes follow in their own table)")
    parser.add_argument("--out", metavar="FILE", help="write the page here (default: print it)")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from segkit.experiments.results_doc import results_page
    from segkit.paths import atomic_file

    out = Path(args.out) if args.out else None
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise SegkitError(f"--out {out}: {'is a folder' if out.is_dir() else 'its folder does not exist'}; "
                          "give a file path such as docs/results.md")
    page = results_page([Path(s) for s in args.sweeps], [c for c in args.highlight.split(",") if c])
    if out is None:
        sys.stdout.write(page)
        return 0
    with atomic_file(out) as handle:
        handle.write(page)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
