"""What every segkit command shares: ``--debug`` and the one-line error contract."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence

from segkit.errors import SegkitError

Main = Callable[[Sequence[str] | None], int]


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")


def guarded(main: Callable[[list[str]], int | None]) -> Main:
    """Turn SegkitError into ``segkit: error: ...`` on stderr and exit code 2 (unless ``--debug``)."""

    @functools.wraps(main)
    def wrapper(argv: Sequence[str] | None = None) -> int:
        args = list(sys.argv[1:] if argv is None else argv)
        try:
            return main(args) or 0
        except SegkitError as err:
            if "--debug" in args:
                raise
            print(f"segkit: error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("segkit: interrupted", file=sys.stderr)
            return 130

    return wrapper
