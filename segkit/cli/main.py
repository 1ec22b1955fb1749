"""The ``segkit`` console script: ``segkit train|test|infer-tta|pseudo-label|make-demo-data ...``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "train": "segkit.cli.train",
    "test": "segkit.cli.test",
    "train-kfold": "segkit.cli.train_kfold",
    "infer-tta": "segkit.cli.infer_tta",
    "pseudo-label": "segkit.cli.pseudo_label",
    "make-demo-data": "segkit.cli.make_demo_data",
    "benchmark": "segkit.cli.benchmark",
    "kfold-split": "segkit.cli.kfold_split",
    "analyze-dataset": "segkit.cli.analyze_dataset",
    "browse-dataset": "segkit.cli.browse_dataset",
    "compare-runs": "segkit.cli.compare_runs",
    "sweep": "segkit.cli.sweep",
    "results-doc": "segkit.cli.results_doc",
    "masks-to-coco": "segkit.cli.masks_to_coco",
    "config-docs": "segkit.cli.config_docs",
    "export": "segkit.cli.export",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        known = ", ".join(COMMANDS)
        if args and args[0] not in ("-h", "--help"):
            print(f"segkit: error: unknown command {args[0]!r}; commands: {known}", file=sys.stderr)
            return 2
        print(f"usage: segkit {{{known}}} ...  (segkit COMMAND --help for its options)")
        return 0
    return importlib.import_module(COMMANDS[args[0]]).main(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
