"""``segkit masks-to-coco --images DIR --masks DIR --classes names.txt --out train.json``: a folder of images
and a folder of class-index PNG masks (same names, ``.png``) -> a COCO json segkit trains on. Line k of the
names file names mask value k; a class named background is left unannotated (segkit's Background);
``--ignore V`` pixels become the image's ignore region. Every region is an exact RLE (docs/data.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from segkit.cli.common import add_debug_flag, guarded
from segkit.errors import SegkitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit masks-to-coco", description=__doc__)
    parser.add_argument("--images", required=True, help="image folder (sub-folders kept in file_name)")
    parser.add_argument("--masks", required=True, help="mask folder: <same relative name>.png per image")
    parser.add_argument("--classes", required=True, help="text file, one class name per line (line k = value k)")
    parser.add_argument("--ignore", type=int, metavar="V", help="mask value to ignore (e.g. 255 or CamVid's 11)")
    parser.add_argument("--things", default="", metavar="NAME,...",
                        help="classes written as one annotation per connected region (default: none; stuff is one "
                             "annotation per image and class)")
    parser.add_argument("--out", required=True, help="the COCO json to write")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from segkit.data.masks_to_coco import masks_to_coco, read_class_names, write_coco

    out = Path(args.out)
    if out.is_dir() or not out.parent.is_dir():
        raise SegkitError(f"--out {out}: {'is a folder' if out.is_dir() else 'its folder does not exist'}; "
                          "give a json file path in an existing folder")
    names = read_class_names(Path(args.classes))
    things = [t.strip() for t in args.things.split(",") if t.strip()]
    coco = masks_to_coco(Path(args.images), Path(args.masks), names, args.ignore, things)
    write_coco(coco, out)
    print(f"{out}: {len(coco['images'])} images, {len(coco['annotations'])} annotations, "
          f"{len(coco['categories'])} categories (data.img_dir = {args.images})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
