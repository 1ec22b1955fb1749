"""docs/models.md's architecture table is the registry's plus the stored measurement run."""

import pytest

from segkit.errors import SegkitError
from segkit.models.model_docs import BEGIN, DOC, END, UNMEASURED, architecture_table, load_measured, with_table
from segkit.registry import MODELS


def test_models_md_holds_exactly_the_generated_table():
    text = DOC.read_text(encoding="utf-8")
    assert with_table(text) == text, "docs/models.md is stale: run `python tools/benchmark.py models --write-docs`"


def test_every_registered_type_is_described_and_measured_once():
    table = architecture_table()
    measured = [m["type"] for m in load_measured()["models"]]
    assert sorted(measured) == sorted(set(measured))
    for name in MODELS.names():
        assert table.count(f"| `{name}` |") == (1 if name in UNMEASURED else 2), name


def test_a_type_without_a_measurement_is_named(monkeypatch):
    measured = load_measured()
    measured["models"] = [m for m in measured["models"] if m["type"] != "PAN"]
    with pytest.raises(SegkitError, match="no measurement for model type\\(s\\) PAN; run `python tools/benchmark.py "
                                          "models --only PAN --save`"):
        architecture_table(measured)
    monkeypatch.setitem(MODELS._entries, "NewNet", lambda num_classes: None)
    with pytest.raises(SegkitError, match="no docs entry for model type 'NewNet'"):
        architecture_table({**load_measured(), "models": [*load_measured()["models"], {"type": "NewNet"}]})


def test_missing_markers_are_an_error():
    with pytest.raises(SegkitError, match="markers are missing"):
        with_table("# Models\n")
    assert with_table(f"a\n{BEGIN}\nold\n{END}\nb").startswith(f"a\n{BEGIN}\n| `type` |")
