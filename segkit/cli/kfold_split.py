"""``segkit kfold-split ANN --folds 5 --out DIR``: ``train_{k}.json``/``val_{k}.json`` for k = 0..folds-1,
stratified on the classes each image contains, reproducible by --seed; --group-by keeps groups (e.g. the
folder of file_name) in one fold; --merge VAL_ANN adds a second file: folds are drawn from both together,
which are also written as train_all.json (clashing ids renumbered)."""

from __future__ import annotations

import argparse

from segkit.cli.common import add_debug_flag, guarded


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit kfold-split", description=__doc__)
    parser.add_argument("ann", help="COCO annotation json to split")
    parser.add_argument("--folds", type=int, default=5, help="number of folds (default: 5)")
    parser.add_argument("--out", required=True, help="folder for the fold jsons and kfold_report.md")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same folds (default: 0)")
    parser.add_argument("--group-by", metavar="KEY", help="'folder' (the directory part of file_name) or an image "
                        "field such as video_id; images sharing it stay in one fold")
    parser.add_argument("--stratify", action=argparse.BooleanOptionalAction, default=True,
                        help="balance each class's images over the folds (default); --no-stratify: random folds "
                        "of equal size")
    parser.add_argument("--merge", metavar="VAL_ANN", help="also split these images and write train_all.json")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from segkit.data.kfold import kfold_split

    table = kfold_split(args.ann, args.out, args.folds, args.seed, args.group_by, args.merge, args.stratify)
    print(f"images of each class per validation fold (seed {args.seed}, grouped by {args.group_by or 'image'}):")
    print(table)
    written = "train_all.json, " if args.merge else ""
    print(f"wrote train_k.json/val_k.json for k=0..{args.folds - 1}, {written}kfold_report.md to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
