"""Stratified k-fold split of a COCO json: ``python tools/kfold_split.py ANN --folds 5 --out DIR``."""

from segkit.cli.kfold_split import main

raise SystemExit(main())
