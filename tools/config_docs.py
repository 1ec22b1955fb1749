"""Regenerate the config key table: ``python tools/config_docs.py --write`` (docs/configs.md)."""

from segkit.cli.config_docs import main

raise SystemExit(main())
