"""Export a checkpoint to ONNX: ``python tools/export.py CKPT --out model.onnx [--int8]``."""

from segkit.cli.export import main

raise SystemExit(main())
