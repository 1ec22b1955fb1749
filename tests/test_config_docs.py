"""docs/configs.md's key table is the schema's: every key, its real default, and help for each."""

from pathlib import Path

import pytest

from segkit.config_docs import BEGIN, END, HELP, key_table, leaf_keys, with_table
from segkit.config_schema import DEFAULTS
from segkit.errors import SegkitError

DOC = Path(__file__).resolve().parents[1] / "docs" / "configs.md"


def test_configs_md_holds_exactly_the_generated_table():
    text = DOC.read_text(encoding="utf-8")
    assert with_table(text) == text, "docs/configs.md is stale: run `python tools/config_docs.py --write`"


def test_every_schema_key_has_help_and_no_help_is_stale():
    keys = [k for k, _ in leaf_keys()]
    assert set(keys) == set(HELP), (set(keys) - set(HELP), set(HELP) - set(keys))
    table = key_table()
    for key, default in leaf_keys():
        assert f"| `{key}` | `{default!r}` |" in table


def test_a_key_without_help_is_named(monkeypatch):
    monkeypatch.setitem(DEFAULTS["train"], "new_knob", 3)
    with pytest.raises(SegkitError, match="train.new_knob"):
        key_table()


def test_missing_markers_are_an_error():
    with pytest.raises(SegkitError, match="markers are missing"):
        with_table("# Configs\n")
    assert with_table(f"a\n{BEGIN}\nold\n{END}\nb").startswith(f"a\n{BEGIN}\n| key |")
