"""PNG class masks -> COCO json: ``python tools/masks_to_coco.py --images D --masks D --classes F --out J``."""

from segkit.cli.masks_to_coco import main

raise SystemExit(main())
