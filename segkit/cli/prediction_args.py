"""The prediction options ``segkit test`` and ``segkit infer-tta`` share: TTA, scales, merge, weights, slide."""

from __future__ import annotations

import argparse

from segkit.errors import SegkitError
from segkit.inference.tta import MERGE_MODES, TTA_MODES, TTASpec, parse_scales
from segkit.inference.window import SlidingWindow, parse_slide


def add_prediction_args(parser: argparse.ArgumentParser, batch_size_default: str) -> None:
    # Values are parsed in main, not by argparse, so a malformed one is a one-line SegkitError.
    parser.add_argument("--tta", default="none", metavar="|".join(TTA_MODES),
                        help="views per image: none (default), flip (+ horizontal flip, 2), hvflip (+ vertical "
                             "and both, 4) or d4 (all 8 flips/rotations)")
    parser.add_argument("--scales", metavar="S1,S2,...",
                        help="also predict at these scales of each side, e.g. 0.75,1.0,1.25 (times the --tta views); "
                             "each side rounded on its own (aspect ratio kept), outputs resized back to the original "
                             "size")
    parser.add_argument("--merge", default="prob", metavar="|".join(MERGE_MODES),
                        help="average the views' softmax probabilities (prob, default) or their logits (logit)")
    parser.add_argument("--weights", metavar="W1,W2,...",
                        help="ensemble weights, one per checkpoint (default: equal); probabilities are averaged")
    parser.add_argument("--slide", metavar="CROP,STRIDE",
                        help="sliding-window inference with CROP px windows every STRIDE px (default: the config's "
                             "test.mode/test.crop/test.stride, else the whole image)")
    parser.add_argument("--resize", metavar="HxW",
                        help="predict every image resized to H x W pixels, probabilities resized back to the image's "
                             "own size (default: the config's test.resize, else each image at its own size)")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help=f"most inputs (images x views, or windows) per forward (default: {batch_size_default})")


def tta_spec(args: argparse.Namespace) -> TTASpec:
    if args.tta not in TTA_MODES:
        raise SegkitError(f"--tta {args.tta!r}: use one of {', '.join(TTA_MODES)}")
    if args.merge not in MERGE_MODES:
        raise SegkitError(f"--merge {args.merge!r}: use one of {', '.join(MERGE_MODES)}")
    scales = parse_scales(args.scales) if args.scales is not None else (1.0,)
    return TTASpec(args.tta, scales, args.merge)


def slide_window(args: argparse.Namespace) -> SlidingWindow | None:
    """``--slide`` when given; None means: follow the config's ``test`` section."""
    return parse_slide(args.slide) if args.slide is not None else None


def resize_size(args: argparse.Namespace) -> tuple[int, int] | None:
    """``--resize 512x384`` -> ``(512, 384)`` (height, width); None means: follow the config's ``test.resize``."""
    if args.resize is None:
        return None
    parts = args.resize.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise SegkitError(f"--resize {args.resize!r}: expected HEIGHTxWIDTH in pixels, e.g. --resize 512x512")
    return int(parts[0]), int(parts[1])


def ensemble_weights(args: argparse.Namespace, checkpoints: int) -> list[float] | None:
    if args.weights is None:
        return None
    try:
        weights = [float(w) for w in args.weights.split(",")]
    except ValueError:
        weights = []
    if not weights or any(not w > 0 for w in weights):
        raise SegkitError(f"--weights {args.weights!r}: expected comma-separated positive numbers, e.g. 1,1,2")
    if len(weights) != checkpoints:
        raise SegkitError(f"--weights {args.weights!r}: {len(weights)} weight(s) for {checkpoints} checkpoint(s)")
    return weights


def batch_size(args: argparse.Namespace, default: int | None) -> int | None:
    if args.batch_size is None:
        return default
    if args.batch_size < 1:
        raise SegkitError(f"--batch-size {args.batch_size}: give a positive number")
    return args.batch_size


def describe(spec: TTASpec, window: SlidingWindow | None, checkpoints: int,
             resize: tuple[int, int] | None = None) -> str:
    """``resized to 512x512, TTA flip x scales 0.75,1 (prob), slide 256/171, 2 checkpoints`` for summaries."""
    parts = [f"resized to {resize[0]}x{resize[1]}"] if resize is not None else []
    if spec.mode != "none" or spec.scales != (1.0,):
        scales = "" if spec.scales == (1.0,) else f" x scales {','.join(f'{s:g}' for s in spec.scales)}"
        parts.append(f"TTA {spec.mode}{scales} ({spec.merge})")
    if window is not None:
        parts.append(f"slide {window.crop}/{window.stride}")
    if checkpoints > 1:
        parts.append(f"{checkpoints} checkpoints")
    return ", ".join(parts)
