from __future__ import annotations

import argparse
import re

import pytest

from segkit.benchmarks import data as bench
from segkit.errors import SegkitError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_tiny_run_reports_all_loaders_identical_masks_and_formats(capsys):
    assert bench.run(parse("--images", "4", "--batch-size", "2", "--workers", "0", "--repeats", "1",
                           "--size", "48")) == 0
    out = capsys.readouterr().out
    for loader in ("segkit, cold cache", "segkit, warm cache", "baseline (annToMask + np.maximum)",
                   "floor (decode + cached mask)"):
        assert re.search(rf"\| {re.escape(loader)} \| \d+ \| [\d.]+ \| [\d.]+ \|", out), loader
    assert "equals the baseline on 4 of 4 images" in out
    assert re.search(r"Goals: warm [\d.]+x the floor in wall time \((met|MISSED)\)", out)
    assert re.search(r"\| segkit .skm \(runs\) \| [\d.]+ \| [\d.]+ \|", out)


def test_ann_needs_root():
    with pytest.raises(SegkitError, match="--ann and --root go together"):
        bench.run(parse("--ann", "x.json"))
