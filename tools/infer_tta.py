"""Predict unlabelled images (TTA, ensembles, submission CSV): ``python tools/infer_tta.py [CONFIG] CKPT ... --input X
--out-dir DIR``."""

from segkit.cli.infer_tta import main

raise SystemExit(main())
