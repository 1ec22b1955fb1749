"""tools/benchmark.py all: one table of every section's headline ratios, and the doc block rewritten."""

import shutil
from pathlib import Path

from segkit.benchmarks.suite import BEGIN, END
from segkit.cli.benchmark import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def test_all_prints_one_ratio_table_and_rewrites_the_generated_block(tmp_path, capsys):
    doc = tmp_path / "benchmarks.md"
    shutil.copyfile(DOC, doc)
    before = doc.read_text()
    assert main(["all", "--quick", "--sections", "loss,eval,models", "--write-docs", str(doc)]) == 0
    out = capsys.readouterr().out
    table = out.split("## All sections")[1]
    assert "| section | ratio | value | goal | met | load before/after | section s |" in table
    assert "| loss | BoundaryFocal / CrossEntropy |" in table and "| eval | SegEvaluator / torchmetrics time |" in table
    assert "| models | (absolute timings, see below) |" in table and "Machine: " in table
    text = doc.read_text()
    head, block = text.split(BEGIN)[0], text.split(BEGIN)[1].split(END)[0]
    assert head == before.split(BEGIN)[0] and text.split(END)[1] == before.split(END)[1]  # the rest is kept
    assert "| loss | BoundaryFocal / CrossEntropy |" in block and "#### loss" in block
    assert "| type | encoder | params M | GFLOPs | CPU ms/image |" in block
    lines = block.splitlines()
    # every section heading sits below the doc's own (eval's report line holds several lines in one string)
    assert not [line for line in lines if line.startswith("#") and not line.startswith("####")]
    assert any(line.startswith("##### eval benchmark") for line in lines)
    tables = [i for i, line in enumerate(lines) if line.startswith("|") and not lines[i - 1].startswith("|")]
    assert tables and all(lines[i - 1] == "" for i in tables)  # Markdown needs the blank line before a table


def test_an_unknown_section_is_one_line(capsys):
    assert main(["all", "--sections", "loss,speed"]) == 2
    assert "--sections speed: unknown; choose from data, loss" in capsys.readouterr().err


def test_the_doc_has_the_generated_block():
    text = DOC.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
