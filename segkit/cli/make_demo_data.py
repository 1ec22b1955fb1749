"""``tools/make_demo_data.py``: write the synthetic trash-like COCO dataset used by ``make demo``."""

from __future__ import annotations

import argparse
import json

from segkit.cli.common import add_debug_flag, guarded
from segkit.data.demo import make_demo_dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make_demo_data.py",
        description="Write a deterministic synthetic COCO segmentation dataset shaped like the trash data.",
    )
    parser.add_argument("--out", default="data/demo", help="dataset folder (default: %(default)s)")
    parser.add_argument("--num-train", type=int, default=200, help="train images (default: %(default)s)")
    parser.add_argument("--num-val", type=int, default=50, help="val images (default: %(default)s)")
    parser.add_argument("--num-test", type=int, default=50, help="unannotated test images (default: %(default)s)")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default: %(default)s)")
    parser.add_argument(
        "--objects",
        type=int,
        nargs=2,
        default=(1, 5),
        metavar=("MIN", "MAX"),
        help="objects per image, inclusive (default: 1 5)",
    )
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    paths = make_demo_dataset(
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        num_test=args.num_test,
        size=args.size,
        objects_per_image=tuple(args.objects),
        seed=args.seed,
        progress=not args.no_progress,
    )
    print(f"demo dataset written to {args.out} ({args.size}x{args.size} images under images/)")
    for split, path in paths.items():
        data = json.loads(path.read_text(encoding="utf-8"))
        anns = f"{len(data['annotations'])} annotations" if "annotations" in data else "no annotations"
        print(f"  {split}: {len(data['images'])} images, {anns} -> {path}")
    return 0
