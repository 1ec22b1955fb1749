"""``segkit train CONFIG``: train, validate and log a run into its work dir."""

from __future__ import annotations

import argparse

from segkit.cli.common import add_config_args, add_debug_flag, guarded, load_cli_config
from segkit.engine.work_dir import resolve_work_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit train", description=__doc__)
    add_config_args(parser, "Python config file, e.g. configs/unet_effb4.py")
    parser.add_argument("--work-dir", help="output folder (default: work_dir from the config, else "
                        "work_dirs/<config name>)")
    parser.add_argument("--resume", nargs="?", const="auto", metavar="CKPT",
                        help="continue a run: from <work_dir>/checkpoints/last.pth, or from CKPT")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the checkpoints, metrics and TensorBoard logs of an earlier run here")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_cli_config(args)
    work_dir = resolve_work_dir(args.config, cfg.work_dir, args.work_dir)

    from segkit.engine.dist import init_distributed, resolve_device, shutdown  # heavy imports late
    from segkit.engine.launch import train_run

    dist_info, dist_device = init_distributed(cfg.train.device)
    try:
        device = dist_device or resolve_device(cfg.train.device)
        train_run(cfg, work_dir, device, resume=args.resume, overwrite=args.overwrite,
                  progress=not args.no_progress, dist=dist_info)
    finally:
        shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
