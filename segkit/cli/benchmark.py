"""``segkit benchmark NAME``: timed comparisons whose ratios go into docs/benchmarks.md; ``all`` runs every
section and prints one table of their ratios (``--write-docs`` rewrites the generated part of the doc)."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from segkit.benchmarks.suite import SECTIONS
from segkit.cli.common import add_debug_flag, guarded

DOC = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit benchmark", description=__doc__)
    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="name", required=True)
    for name, module in SECTIONS.items():
        bench = importlib.import_module(module)
        sub_parser = sub.add_parser(name, help=bench.__doc__.strip().splitlines()[0])
        add_debug_flag(sub_parser)
        bench.add_arguments(sub_parser)
        sub_parser.set_defaults(run=bench.run)
    every = sub.add_parser("all", help="every section (or --sections), one table of ratios")
    every.add_argument("--sections", default=",".join(SECTIONS), metavar="A,B",
                       help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})")
    every.add_argument("--quick", action="store_true", help="tiny sizes: checks the machinery, ratios mean little")
    every.add_argument("--device", help="device for the sections that take one (loss, trainer, eval, tta)")
    every.add_argument("--write-docs", nargs="?", const=str(DOC), metavar="MD",
                       help="rewrite the generated block of this file (default: docs/benchmarks.md)")
    add_debug_flag(every)
    every.set_defaults(run=run_all)
    return parser


def run_all(args: argparse.Namespace) -> int:
    from segkit.benchmarks.suite import run_sections, summary_table, write_docs

    reports, context = run_sections([s for s in args.sections.split(",") if s], args.quick, args.device)
    print("## All sections\n")
    print(summary_table(reports, context))
    if args.write_docs:
        write_docs(args.write_docs, reports, context)
        print(f"\n{args.write_docs}: generated block rewritten")
    return 0


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
