"""Pseudo-label unlabelled images: ``python tools/pseudo_label.py CONFIG CKPT --input DIR --out pseudo.json``."""

from segkit.cli.pseudo_label import main

raise SystemExit(main())
