"""Train a model from a config: ``python tools/train.py configs/demo_unet.py``."""

from segkit.cli.train import main

raise SystemExit(main())
