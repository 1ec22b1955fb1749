"""``tools/benchmark.py export`` runs (tiny sizes) and reports eager vs onnxruntime fp32 vs int8 ratios."""

import pytest

from segkit.cli.benchmark import main

pytest.importorskip("onnxruntime")


def test_export_section_prints_its_table(capsys):
    assert main(["export", "--size", "64", "--batches", "1", "--repeats", "1", "--calib", "1",
                 "--only", "demo Unet"]) == 0
    out = capsys.readouterr().out
    assert "| model | batch | PyTorch eager | onnxruntime fp32 | int8 |" in out and "| demo Unet | 1 |" in out
