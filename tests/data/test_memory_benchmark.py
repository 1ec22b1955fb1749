from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from segkit.benchmarks import memory as bench
from segkit.errors import SegkitError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_synthetic_json_has_the_asked_shape(tmp_path):
    bench.write_synthetic_coco(tmp_path, images=50, objects=10, vertices=16, size=32)
    coco = json.loads((tmp_path / "train.json").read_text())
    assert len(coco["images"]) == 50 and {img["file_name"] for img in coco["images"]} == {"shared.png"}
    assert 7 <= len(coco["annotations"]) / 50 <= 13
    coords = [len(ann["segmentation"][0]) for ann in coco["annotations"]]
    assert 24 <= sum(coords) / len(coords) <= 40 and min(coords) >= 6
    assert all(0 <= v <= 31 for ann in coco["annotations"] for v in ann["segmentation"][0])


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux smaps_rollup")
def test_tiny_run_reports_every_process_and_a_verdict(capsys):
    assert bench.run(parse("--images", "40", "--workers", "2", "--batch-size", "4", "--sample-every", "3")) == 0
    out = capsys.readouterr().out
    for name in ("main", "worker 0", "worker 1"):
        assert re.search(rf"\| {name} \|( \d+ \|){{6}}", out), name
    assert "worker 2" not in out
    assert re.search(r"summed over 2 workers.*RSS [+-]\d+ MB = [\d.]+% \((met|MISSED)\); USS", out)


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(SegkitError, match="--vertices must be at least 3"):
        bench.run(parse("--vertices", "2"))
    with pytest.raises(SegkitError, match="--workers must be at least 1"):
        bench.run(parse("--workers", "0"))
