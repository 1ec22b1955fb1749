"""``segkit config-docs [--write]``: print (or rewrite in docs/configs.md) the table of every config key with
its default, generated from the schema."""

from __future__ import annotations

import argparse
from pathlib import Path

from segkit.cli.common import add_debug_flag, guarded

DOC = Path(__file__).resolve().parents[2] / "docs" / "configs.md"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit config-docs", description=__doc__)
    parser.add_argument("--write", nargs="?", const=str(DOC), metavar="MD",
                        help=f"replace the generated table in this file (default: {DOC.relative_to(DOC.parents[1])})")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from segkit.config_docs import key_table, write_table

    if args.write:
        print(f"{args.write}: {'table updated' if write_table(args.write) else 'already up to date'}")
    else:
        print(key_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
