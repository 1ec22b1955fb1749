"""Dataset statistics and plots: ``python tools/analyze_dataset.py ANN [ANN ...] --out DIR``."""

from segkit.cli.analyze_dataset import main

raise SystemExit(main())
