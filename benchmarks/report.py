"""Figures, the results table, and a description of the machine the figures come from."""

from __future__ import annotations

import os
import platform
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["Figure", "at_least", "at_most", "info", "machine", "render_table"]


@dataclass
class Figure:
    """One measured figure; `target` None means it is shown for information only."""

    scenario: str
    name: str
    value: float | None
    unit: str = ""
    target: str = ""
    passed: bool | None = None
    note: str = ""

    def shown(self) -> str:
        if self.value is None:
            return "n/a"
        value = self.value
        if abs(value) >= 100 or value == int(value):
            text = f"{value:,.0f}"
        elif abs(value) >= 10:
            text = f"{value:,.1f}"
        else:
            text = f"{value:,.3g}" if abs(value) < 1 else f"{value:,.2f}"
        return f"{text} {self.unit}".rstrip()

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return ""
        return "pass" if self.passed else "FAIL"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def _check(
    scenario: str,
    name: str,
    value: float | None,
    unit: str,
    target: str,
    ok: Callable[[float], bool],
    note: str,
) -> Figure:
    passed = value is not None and ok(value)
    return Figure(scenario, name, value, unit, target, passed, note)


def at_least(
    scenario: str, name: str, value: float | None, bound: float, unit: str = "", note: str = ""
) -> Figure:
    target = f">= {bound:g} {unit}".rstrip()
    return _check(scenario, name, value, unit, target, lambda v: v >= bound, note)


def at_most(
    scenario: str, name: str, value: float | None, bound: float, unit: str = "", note: str = ""
) -> Figure:
    target = f"<= {bound:g} {unit}".rstrip()
    return _check(scenario, name, value, unit, target, lambda v: v <= bound, note)


def info(scenario: str, name: str, value: float | None, unit: str = "", note: str = "") -> Figure:
    return Figure(scenario, name, value, unit, note=note)


def render_table(figures: Iterable[Figure]) -> str:
    """A Markdown table: scenario, figure, value, target, result, note."""
    rows = [("scenario", "figure", "value", "target", "result", "note")]
    rows += [(f.scenario, f.name, f.shown(), f.target, f.verdict, f.note) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: tuple[str, ...]) -> str:
        return (
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            + " |"
        )

    rule = "| " + " | ".join("-" * width for width in widths) + " |"
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for text in Path("/proc/meminfo").read_text().splitlines():
            if text.startswith("MemTotal:"):
                return f"{int(text.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def machine() -> dict[str, str]:
    """What the figures depend on: CPU, memory, OS, Python and library versions."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": f"{_cpu_model()}, {os.cpu_count()} logical CPUs ({usable} usable)",
        "memory": _memory(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "picjobs": _version("picjobs"),
        "aiohttp": _version("aiohttp"),
        "tenacity": _version("tenacity"),
        "lxml": _version("lxml"),
        "cos-python-sdk-v5": _version("cos-python-sdk-v5"),
        "requests": _version("requests"),
    }
