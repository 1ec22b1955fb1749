"""What every segkit command shares: ``--debug`` and the one-line error contract."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence

from segkit.config import Config, load_config
from segkit.errors import SegkitError

Main = Callable[[Sequence[str] | None], int]


def add_config_args(parser: argparse.ArgumentParser, config_help: str, device: bool = True) -> None:
    """CONFIG, ``--set KEY=VALUE ...``, ``--device`` (optional) and ``--no-progress``: shared by config commands."""
    parser.add_argument("config", help=config_help)
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config keys, e.g. --set data.batch_size=4 optimizer.lr=3e-4")
    if device:
        parser.add_argument("--device", help="cpu, cuda, cuda:1 or auto (default: train.device from the config)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars (for log files)")


def load_cli_config(args: argparse.Namespace) -> Config:
    """The config with ``--set`` merged and ``--device`` applied."""
    cfg = load_config(args.config, args.set)
    if getattr(args, "device", None):
        cfg.train.device = args.device
    return cfg


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
