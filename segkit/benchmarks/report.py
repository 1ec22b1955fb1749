"""What a benchmark section measured: the Markdown it prints, and its headline ratios against targets.

Sections print as they go (long runs show progress) and keep every line, so ``tools/benchmark.py all`` can
gather one table of ratios over all sections and rewrite the generated part of docs/benchmarks.md.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import datetime

import torch


@dataclass
class Ratio:
    """``value`` of ``what`` (a time ratio, lower is better, unless ``higher_is_better``) and its goal."""

    what: str
    value: float
    target: float | None = None
    higher_is_better: bool = False

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    @property
    def goal(self) -> str:
        if self.target is None:
            return "-"
        return f"{'>=' if self.higher_is_better else '<='} {self.target:g}"


@dataclass
class Report:
    name: str
    echo: bool = True
    lines: list[str] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)

    def line(self, text: str = "") -> None:
        self.lines.append(text)
        if self.echo:
            print(text, flush=True)

    def ratio(self, what: str, value: float, target: float | None = None, higher_is_better: bool = False) -> None:
        self.ratios.append(Ratio(what, value, target, higher_is_better))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def machine() -> str:
    """CPU model, cores, torch threads, torch version and the GPU if any: what the ratios were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
            f"{gpu}")


def now() -> str:
    return f"{datetime.now():%Y-%m-%d %H:%M}"
