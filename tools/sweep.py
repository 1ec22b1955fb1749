"""Seeded sweeps with mean ± std tables: ``python tools/sweep.py CONFIG --grid KEY=V1,V2 --seeds 3 --work-dir DIR``."""

from segkit.cli.sweep import main

raise SystemExit(main())
