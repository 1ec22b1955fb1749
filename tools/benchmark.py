"""Benchmarks against baselines measured in the same run: ``python tools/benchmark.py NAME --help``."""

from segkit.cli.benchmark import main

raise SystemExit(main())
