"""``segkit analyze-dataset ANN [ANN ...] --out DIR``: class, object-size and image-size statistics as PNG plots
and a markdown summary (``DIR/summary.md``), read from COCO jsons alone (no images needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from segkit.cli.common import add_debug_flag, guarded


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit analyze-dataset", description=__doc__)
    parser.add_argument("ann", nargs="+", help="COCO annotation json(s); several files are compared in each plot")
    parser.add_argument("--out", required=True, help="folder for the plots and summary.md")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from segkit.data.analysis import collect
    from segkit.visualization.dataset_report import write_report

    paths = [Path(p) for p in args.ann]
    names = [p.name for p in paths]
    if len(set(names)) < len(names):  # e.g. fold_0/val.json and fold_1/val.json
        names = [str(p) for p in paths]
    files = [collect(p, name, progress=not args.no_progress) for p, name in zip(paths, names)]
    summary = write_report(files, args.out, progress=not args.no_progress)
    for f in files:
        print(f"{f.name}: {f.num_images} images, {int(f.objects_per_image.sum())} objects, {len(f.classes)} classes")
    print(f"plots and summary written to {summary.parent} (open {summary})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
