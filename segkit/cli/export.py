"""``segkit export CKPT --out model.onnx``: the eval network as ONNX (dynamic N, H, W), checked against PyTorch.

``--check`` (default) runs onnxruntime on three sizes (256x256, 97x131, 640x576) and fails unless the
probabilities agree to 1e-4 and the argmax on >= 99.99% of pixels (fp32; with --fp16 2e-2 and 99.5%). ``--int8``
also writes ``<out>.int8.onnx``, statically quantised on ``--calib`` training images. ``--format smp``
writes a plain-smp ``from_pretrained`` folder instead. See docs/deploy.md.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from segkit.cli.common import add_debug_flag, guarded
from segkit.errors import SegkitError
from segkit.paths import StagedFile


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit export", description=__doc__)
    parser.add_argument("checkpoint", metavar="CKPT", help="e.g. work_dirs/demo_unet/checkpoints/best.pth")
    parser.add_argument("--out", required=True, help="the .onnx file (or, with --format smp, the folder) to write")
    parser.add_argument("--format", default="onnx", choices=["onnx", "smp"], help="onnx (default) or smp")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument("--fp16", action="store_true", help="export in float16 (inputs and outputs float16)")
    parser.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                        help="compare onnxruntime with PyTorch at three sizes (default: on)")
    parser.add_argument("--int8", action="store_true", help="also write an int8 model (static quantisation)")
    parser.add_argument("--calib", type=int, default=32, metavar="N",
                        help="training images that calibrate --int8 (default: 32)")
    add_debug_flag(parser)
    return parser


@guarded
def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.format == "smp":
        from segkit.models.smp_hub import export_smp_folder

        print(f"smp folder written to {export_smp_folder(Path(args.checkpoint), Path(args.out))}")
        return 0
    from segkit.deploy.onnx_export import check_export, export_model, load_for_export

    out = Path(args.out)
    loaded = load_for_export(args.checkpoint)
    calibration = None
    if args.int8:  # read before anything is written: a calibration that cannot run writes nothing
        from segkit.deploy.quantize import calibration_images, quantize_int8

        calibration = calibration_images(json.loads(loaded.metadata["config"]), args.calib)
    staged = _staged(out)
    staged.handle.close()
    try:
        export_model(loaded.model, staged.tmp, loaded.metadata, opset=args.opset, fp16=args.fp16)
        results = check_export(loaded.model, staged.tmp, fp16=args.fp16) if args.check else []
        os.replace(staged.tmp, out)
    finally:
        staged.abort()
    print(f"{out}: exported ({'fp16' if args.fp16 else 'fp32'}, opset {args.opset}, dynamic N/H/W)")
    for result in results:
        print(f"  check {result['size']}: max |prob diff| {result['max_prob_diff']:.1e}, "
              f"argmax equal {result['argmax_agreement']:.4%}")
    if calibration is not None:
        int8 = quantize_int8(out, calibration)
        print(f"{int8}: int8, calibrated on {len(calibration)} training images")
    return 0


def _staged(out: Path) -> StagedFile:
    if out.suffix != ".onnx":
        raise SegkitError(f"--out {out}: give a file name ending in .onnx")
    try:
        return StagedFile(out, "wb")
    except OSError as err:
        raise SegkitError(f"--out {out}: cannot write there ({err.strerror})") from err


if __name__ == "__main__":
    raise SystemExit(main())
