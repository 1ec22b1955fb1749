from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from segkit.benchmarks import data as bench
from segkit.errors import SegkitError

LABELME = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "labelme_coco"


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


@pytest.mark.skipif(not (LABELME / "annotations.json").is_file(), reason="../shared/data/labelme_coco is absent")
def test_a_real_json_is_measured_too(capsys):
    """``--ann``/``--root`` on a json with more images than ``--images`` (a Subset under segkit's loader)."""
    assert bench.run(parse("--ann", str(LABELME / "annotations.json"), "--root", str(LABELME), "--images", "2",
                           "--batch-size", "1", "--workers", "0", "--repeats", "1", "--size", "48")) == 0
    out = capsys.readouterr().out
    assert "### annotations.json: 2 images" in out
    assert re.search(r"\| segkit, warm cache \| \d+ \|", out.split("### annotations.json")[1])
