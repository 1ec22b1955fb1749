"""Compare runs: ``python tools/compare_runs.py work_dirs/* [--baseline RUN] [--plot curves.png]``."""

from segkit.cli.compare_runs import main

raise SystemExit(main())
