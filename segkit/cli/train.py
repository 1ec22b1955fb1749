"""``segkit train CONFIG``: train, validate and log a run into its work dir."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from segkit.cli.common import add_config_args, add_debug_flag, guarded, load_cli_config
from segkit.errors import SegkitError


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


def resolve_work_dir(config_path: str, configured: str | None, flag: str | None) -> Path:
    return Path(flag or configured or Path("work_dirs") / Path(config_path).stem)


def prepare_work_dir(work_dir: Path, resume: str | None, overwrite: bool, delete: bool = True) -> Path | None:
    """Refuse to mix two runs in one folder; return the checkpoint to resume from, if any.

    With ``overwrite`` the earlier run's outputs are removed when ``delete`` (rank 0 only under DDP).
    """
    last = work_dir / "checkpoints" / "last.pth"
    if resume == "auto":
        if not last.is_file():
            raise SegkitError(f"--resume: no checkpoint at {last}; drop --resume to start a new run there")
        return last
    if resume:
        return Path(resume)
    if last.is_file() and not overwrite:
        raise SegkitError(f"{work_dir} already holds a run ({last}); pass --resume to continue it, "
                          "--overwrite to replace it, or --work-dir for a new folder")
    if overwrite and delete:
        for name in ("checkpoints", "tb"):
            shutil.rmtree(work_dir / name, ignore_errors=True)
        for name in ("metrics.jsonl", "summary.json", "train.log"):
            (work_dir / name).unlink(missing_ok=True)
    return None


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_cli_config(args)
    work_dir = resolve_work_dir(args.config, cfg.work_dir, args.work_dir)
    cfg.work_dir = str(work_dir)

    from segkit.engine.dist import barrier, init_distributed, shutdown  # heavy imports after argument checks
    from segkit.engine.trainer import Trainer, resolve_device

    dist_info, dist_device = init_distributed(cfg.train.device)
    try:
        device = dist_device or resolve_device(cfg.train.device)
        checkpoint = prepare_work_dir(work_dir, args.resume, args.overwrite, delete=dist_info.is_main)
        if dist_info.is_main:
            work_dir.mkdir(parents=True, exist_ok=True)
            cfg.dump(work_dir / "config.py")
        barrier()
        trainer = Trainer(cfg, work_dir, device, progress=not args.no_progress, dist=dist_info)
        if checkpoint is not None:
            trainer.resume(checkpoint)
        trainer.train()
    finally:
        shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
