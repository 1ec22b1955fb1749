"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--out metrics.json]``."""

from segkit.cli.test import main

raise SystemExit(main())
