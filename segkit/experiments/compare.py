"""One table of runs: the config keys that differ between them, best mIoU, per-class IoU at the best epoch.

Configs are compared flattened (``loss.gamma``, ``data.train.pipeline[1].p``) after defaults are applied, so
a key shows up only when the runs really trained differently. Metric columns mark their best value and,
against a baseline run, show each other run's difference from it.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from segkit.errors import SegkitError
from segkit.experiments.runs import Run

FORMATS = ("md", "csv", "html")
IGNORED_KEYS = ("work_dir",)  # where a run was written is not how it trained
ABSENT = "-"  # a key one run's config does not have


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested config -> ``{"a.b": leaf}``; lists holding dicts are indexed (``pipeline[1].p``)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list | tuple) and any(isinstance(item, Mapping | list | tuple) for item in value):
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
        return out if value else {prefix: value}
    return {prefix: value}


def normalised(value: Any) -> Any:
    """The value as JSON would store it: a tuple in a config file equals the list ``--set`` gives."""
    return json.loads(json.dumps(value, default=str))


def differing_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Flattened keys whose value is not the same in every config (a missing key counts as different)."""
    flat = [{k: normalised(v) for k, v in flatten(c).items()} for c in configs]
    keys: dict[str, None] = {}
    for f in flat:
        keys.update(dict.fromkeys(f))
    sections = list(dict.fromkeys(_section(k) for k in keys))  # keys of one section stay together
    differing = [k for k in keys if _section(k) not in IGNORED_KEYS and len({repr(f.get(k, ABSENT)) for f in flat}) > 1]
    return sorted(differing, key=lambda k: sections.index(_section(k)))


def _section(key: str) -> str:
    return key.split(".")[0].split("[")[0]


@dataclass
class Comparison:
    """Rows in run order; ``values[run][column]`` are raw (fractions for metrics, config values for keys)."""

    runs: list[str]
    keys: list[str]  # config key columns
    metrics: list[str]  # metric columns: mIoU, [mIoU (shared)], then the shared classes
    values: dict[str, dict[str, Any]]
    notes: list[str]
    baseline: str | None = None

    def best_of(self, column: str) -> float | None:
        numbers = [v for r in self.runs if _is_number(v := self.values[r].get(column))]
        return max(numbers) if numbers else None


def compare(runs: Sequence[Run], baseline: str | None = None, sort: str | None = None) -> Comparison:
    """The comparison of ``runs``; ``baseline`` is the name of one of them, ``sort`` a column to sort by."""
    if not runs:
        raise SegkitError("no runs to compare")
    names = [r.name for r in runs]
    if baseline is not None and baseline not in names:
        raise SegkitError(f"--baseline {baseline}: not one of the compared runs ({', '.join(names)})")
    notes: list[str] = []
    known = [r for r in runs if r.classes] or list(runs)  # a run that never validated has no class list yet
    shared = [c for c in known[0].classes if all(c in r.classes for r in known[1:])]
    if any(r.classes != known[0].classes for r in known[1:]):
        only = sorted({c for r in known for c in r.classes} - set(shared))
        notes.append(f"the runs have different class lists: compared on the {len(shared)} shared classes "
                     f"(not in every run: {', '.join(only) or 'none'}); 'mIoU (shared)' averages those")
    keys = differing_keys([r.config for r in runs])
    with_shared = bool(notes)
    metric_columns = ["mIoU", "epoch"] + (["mIoU (shared)"] if with_shared else []) + shared
    values: dict[str, dict[str, Any]] = {}
    for run in runs:
        flat = flatten(run.config)
        row: dict[str, Any] = {k: normalised(flat[k]) if k in flat else ABSENT for k in keys}
        best = run.best
        if best is None:
            notes.append(f"{run.name}: no validation yet (no metrics.jsonl line)")
        row["mIoU"] = best["mIoU"] if best else None
        row["epoch"] = best["epoch"] if best else None
        per_class = best["IoU"] if best else {}
        for c in shared:
            row[c] = per_class.get(c)
        if with_shared:
            scores = [per_class[c] for c in shared if per_class.get(c) is not None]
            row["mIoU (shared)"] = sum(scores) / len(scores) if scores else None
        values[run.name] = row
    if sort is not None:
        names = _sorted(names, values, sort, keys, metric_columns)
    return Comparison(runs=names, keys=keys, metrics=metric_columns, values=values, notes=notes, baseline=baseline)


def _sorted(names: list[str], values: dict[str, dict[str, Any]], column: str, keys: list[str],
            metric_columns: list[str]) -> list[str]:
    """Scores best first; epochs and config keys ascending (numbers by value, text alphabetically); gaps last."""
    columns = keys + metric_columns
    if column not in columns:
        raise SegkitError(f"--sort {column}: no such column; choose one of {', '.join(columns)}")
    present = [n for n in names if values[n][column] not in (None, ABSENT)]
    missing = [n for n in names if values[n][column] in (None, ABSENT)]
    numeric = all(_is_number(values[n][column]) for n in present)
    if numeric and column in metric_columns and _is_score(column):  # scores: best first
        return sorted(present, key=lambda n: -values[n][column]) + missing
    if numeric:  # epochs and numeric config keys: ascending
        return sorted(present, key=lambda n: values[n][column]) + missing
    return sorted(present, key=lambda n: str(values[n][column])) + missing


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _is_score(column: str) -> bool:
    return column != "epoch"


def cells(comparison: Comparison, percent: bool) -> tuple[list[str], list[list[str]], list[list[bool]]]:
    """Header, text cells and best-marks of every row; metric cells are deltas against the baseline."""
    header = ["run", *comparison.keys, *comparison.metrics]
    base = comparison.values[comparison.baseline] if comparison.baseline else None
    rows, marks = [], []
    for name in comparison.runs:
        row, mark = [name], [False]
        for key in comparison.keys:
            row.append(_text(comparison.values[name][key]))
            mark.append(False)
        for column in comparison.metrics:
            value = comparison.values[name][column]
            row.append(_metric_text(value, base, column, name == comparison.baseline, percent))
            mark.append(_is_score(column) and value is not None and value == comparison.best_of(column))
        rows.append(row)
        marks.append(mark)
    return header, rows, marks


def _metric_text(value: Any, base: Mapping[str, Any] | None, column: str, is_baseline: bool, percent: bool) -> str:
    """Percent with 2 decimals (md, html) or the full-precision fraction (csv); a difference where the baseline
    has the value. In CSV a difference the baseline cannot give is empty, never an absolute number."""
    if value is None:
        return "-" if percent else ""
    if not _is_score(column):
        return str(value)
    absolute = base is None or is_baseline
    if percent:
        if absolute or base.get(column) is None:  # type: ignore[union-attr]
            return f"{100 * value:.2f}"
        return f"{100 * (value - base[column]):+.2f}"  # type: ignore[index]
    if absolute:
        return repr(value)
    return "" if base.get(column) is None else repr(value - base[column])  # type: ignore[union-attr,index]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def render(comparison: Comparison, fmt: str = "md") -> str:
    """Markdown (percent, best in bold), CSV (fractions, no marks) or an HTML table (percent, best in bold)."""
    if fmt not in FORMATS:
        raise SegkitError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    header, rows, marks = cells(comparison, percent=fmt != "csv")
    legend = _legend(comparison, fmt)
    if fmt == "csv":
        if comparison.baseline:  # which rows hold values and which hold differences, in the file itself
            header.insert(1, "values")
            for name, row in zip(comparison.runs, rows):
                row.insert(1, "absolute" if name == comparison.baseline else f"minus {comparison.baseline}")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue()
    if fmt == "html":
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{'<b>' if m else ''}{html.escape(c)}{'</b>' if m else ''}</td>"
                                        for c, m in zip(row, mark)) + "</tr>\n" for row, mark in zip(rows, marks))
        notes = "".join(f"<p>{html.escape(n)}</p>\n" for n in legend)
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n{notes}"
    lines = ["| " + " | ".join(_md(h) for h in header) + " |",
             "|" + "|".join("---" if i <= len(comparison.keys) else "---:" for i in range(len(header))) + "|"]
    for row, mark in zip(rows, marks):
        lines.append("| " + " | ".join(f"**{_md(c)}**" if m else _md(c) for c, m in zip(row, mark)) + " |")
    return "\n".join(lines + [""] + legend) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _legend(comparison: Comparison, fmt: str) -> list[str]:
    unit = "fractions" if fmt == "csv" else "percent"
    lines = [f"IoU and mIoU in {unit} at each run's best validation (epoch = when)"
             + ("" if fmt == "csv" else "; best of each column in bold")]
    if comparison.baseline:
        lines.append(f"metric columns of the other runs are differences from the baseline {comparison.baseline}")
    return [] if fmt == "csv" else lines + comparison.notes
