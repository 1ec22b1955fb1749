"""``segkit benchmark NAME``: timed comparisons whose ratios go into docs/benchmarks.md."""

from __future__ import annotations

import argparse
import importlib

from segkit.cli.common import add_debug_flag, guarded

# name -> module in segkit.benchmarks exposing add_arguments(parser) and run(args) -> int
BENCHMARKS = {
    "data": "segkit.benchmarks.data",
    "eval": "segkit.benchmarks.eval",
    "loss": "segkit.benchmarks.loss",
    "memory": "segkit.benchmarks.memory",
    "models": "segkit.benchmarks.models",
    "tta": "segkit.benchmarks.tta",
    "trainer": "segkit.benchmarks.trainer",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit benchmark", description=__doc__)
    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="name", required=True)
    for name, module in BENCHMARKS.items():
        bench = importlib.import_module(module)
        sub_parser = sub.add_parser(name, help=bench.__doc__.strip().splitlines()[0])
        add_debug_flag(sub_parser)
        bench.add_arguments(sub_parser)
        sub_parser.set_defaults(run=bench.run)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
