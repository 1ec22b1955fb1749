"""``segkit browse-dataset CONFIG --split train --num 16 --out DIR``: augmented samples exactly as the model
receives them (same per-sample seeds as training with train.seed), with class overlays and a legend.
One PNG per sample plus grid.png. CutMix (data.train.cutmix) mixes device batches later and is not shown."""

from __future__ import annotations

import argparse

from segkit.cli.common import add_config_args, add_debug_flag, guarded, load_cli_config
from segkit.errors import SegkitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit browse-dataset", description=__doc__)
    add_config_args(parser, "the training config", device=False)
    parser.add_argument("--split", default="train", choices=["train", "val", "test"], help="default: train")
    parser.add_argument("--num", type=int, default=16, help="number of samples (default: 16)")
    parser.add_argument("--out", required=True, help="folder for the PNGs")
    parser.add_argument("--epoch", type=int, default=0, help="show the augmentation of this epoch (default: 0)")
    parser.add_argument("--indices", type=int, nargs="+", help="these dataset indices instead of the loader's "
                        "first --num samples")
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay opacity (default: 0.5)")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.num < 1:
        raise SegkitError(f"--num {args.num}: show at least one sample")
    if args.epoch < 0:
        raise SegkitError(f"--epoch {args.epoch}: epochs count from 0")
    if not 0.0 <= args.alpha <= 1.0:
        raise SegkitError(f"--alpha {args.alpha}: the overlay opacity must be in [0, 1]")
    cfg = load_cli_config(args)

    from segkit.data.loader import build_dataset
    from segkit.visualization.browse import browse, pick_samples

    dataset = build_dataset(cfg, args.split)
    picked = pick_samples(dataset, args.num, int(cfg.train.seed), args.epoch, shuffle=args.split == "train",
                          indices=args.indices)
    written = browse(dataset, picked, args.out, int(cfg.data.ignore_index), args.alpha,
                     progress=not args.no_progress)
    print(f"{len(written)} PNGs written to {args.out} ({args.split}, epoch {args.epoch}, seed {cfg.train.seed}; "
          f"grid: {written[-1]})")
    if args.split == "train" and cfg.data.train.cutmix:
        print("note: data.train.cutmix mixes whole batches on the training device; it is not shown here")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
