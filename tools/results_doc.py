"""docs/results.md from sweep folders: ``python tools/results_doc.py SWEEP [SWEEP ...] --out docs/results.md``."""

from segkit.cli.results_doc import main

raise SystemExit(main())
