"""Augmented samples with class overlays: ``python tools/browse_dataset.py CONFIG --split train --out DIR``."""

from segkit.cli.browse_dataset import main

raise SystemExit(main())
