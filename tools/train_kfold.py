"""k-fold training with out-of-fold mIoU: ``python tools/train_kfold.py CONFIG --folds 5 [--fold K]``."""

from segkit.cli.train_kfold import main

raise SystemExit(main())
