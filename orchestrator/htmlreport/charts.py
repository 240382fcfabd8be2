"""The report's charts: matplotlib figures saved as SVG, ready to inline in the page.

No pyplot: each chart is a bare `Figure`, drawn by matplotlib's SVG backend, so nothing here
touches a display or global figure state. Text stays text (`svg.fonttype = none`), drawn by the
browser's own sans-serif font: no font is embedded or fetched. Element ids get the chart's name
as a prefix, so several charts can share one page.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Final

import matplotlib
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from orchestrator.htmlreport.data import Latency, RunBar, Timeline

__all__ = [
    "COLOURS",
    "finished_chart",
    "history_chart",
    "jobs_chart",
    "latency_chart",
    "levels_chart",
    "submitted_chart",
]

COLOURS: Final = {
    "success": "#2e7d32",
    "failed": "#c62828",
    "cancelled": "#8d8d8d",
    "skipped": "#7cb342",
    "in flight": "#1565c0",
    "pending": "#c8c8c8",
    "submitted": "#1565c0",
    "throttled": "#ef6c00",
    "duration": "#6a1b9a",
}
_SIZE: Final = (7.2, 2.8)
_LATENCY_BARS: Final = 60
_XML_PROLOGUE: Final = re.compile(r"\A.*?(?=<svg\b)", re.S)
_SIZE_ATTRS: Final = re.compile(r'\s(?:width|height)="[^"]*"')


def _style(name: str) -> AbstractContextManager[None]:
    """The charts' look; the hash salt makes each chart's generated ids its own."""
    return matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": name,
            "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial"],
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "legend.fontsize": 8,
        }
    )


@contextmanager
def _figure(name: str, size: tuple[float, float] = _SIZE) -> Iterator[Figure]:
    with _style(name):
        figure = Figure(figsize=size, layout="constrained")
        yield figure


def _svg(figure: Figure, name: str, label: str) -> str:
    """The figure as an `<svg>` element: no XML prologue, sized by the page, ids prefixed."""
    buffer = io.StringIO()
    metadata = {"Creator": None, "Date": None, "Format": None, "Type": None}
    with _style(name):
        figure.savefig(buffer, format="svg", metadata=metadata)
    svg = _XML_PROLOGUE.sub("", buffer.getvalue(), count=1)
    head, rest = svg.split(">", 1)
    head = _SIZE_ATTRS.sub("", head) + f' role="img" aria-label="{label}"'
    svg = head + ">" + rest
    svg = svg.replace(' id="', f' id="{name}-').replace('href="#', f'href="#{name}-')
    return svg.replace("url(#", f"url(#{name}-").strip()


def _counts_on(axis: Axis) -> None:
    """Whole numbers with thousands separators."""
    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))


def _unit(seconds: float) -> tuple[float, str]:
    if seconds < 180:
        return 1.0, "seconds"
    if seconds < 3 * 3600:
        return 60.0, "minutes"
    return 3600.0, "hours"


def _per_minute(counts: Sequence[int], width: int) -> list[float]:
    return [n * 60.0 / width for n in counts]


def _elapsed_axis(ax: Axes, timeline: Timeline) -> tuple[list[float], float]:
    """Bin starts in the run's elapsed time, the bar width, and the axis label."""
    span = timeline.bin_seconds * len(timeline.success)
    scale, unit = _unit(span)
    ax.set_xlabel(f"{unit} since the run started")
    ax.set_xlim(0, span / scale)
    starts = [i * timeline.bin_seconds / scale for i in range(len(timeline.success))]
    return starts, timeline.bin_seconds / scale


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#666666")


def _per(width: int) -> str:
    return "per minute" if width >= 60 else f"per minute ({width} s bins)"


def finished_chart(timeline: Timeline | None) -> str:
    with _figure("finished") as figure:
        ax = figure.subplots()
        if timeline is None:
            _note(ax, "no run yet")
        else:
            x, width = _elapsed_axis(ax, timeline)
            success = _per_minute(timeline.success, timeline.bin_seconds)
            failed = _per_minute(timeline.failed, timeline.bin_seconds)
            ax.bar(x, success, width, align="edge", color=COLOURS["success"], label="success")
            ax.bar(
                x,
                failed,
                width,
                bottom=success,
                align="edge",
                color=COLOURS["failed"],
                label="failed",
            )
            ax.set_ylabel(f"items {_per(timeline.bin_seconds)}")
            figure.legend(loc="outside upper right", ncols=2)
        _counts_on(ax.yaxis)
        return _svg(figure, "finished", "items reaching a final state per minute, last run")


def submitted_chart(timeline: Timeline | None) -> str:
    with _figure("submitted") as figure:
        ax = figure.subplots()
        if timeline is None:
            _note(ax, "no run yet")
            return _svg(figure, "submitted", "submissions per minute, last run")
        x, width = _elapsed_axis(ax, timeline)
        submitted = _per_minute(timeline.submitted, timeline.bin_seconds)
        ax.bar(x, submitted, width, align="edge", color=COLOURS["submitted"], label="submitted")
        ax.set_ylabel(f"submissions {_per(timeline.bin_seconds)}")
        _counts_on(ax.yaxis)
        if timeline.throttled is None:
            ax.text(
                0.99,
                0.97,
                "throttling not recorded for this run",
                transform=ax.transAxes,
                ha="right",
                va="top",
                color=COLOURS["throttled"],
            )
            figure.legend(loc="outside upper right")
        else:
            throttled = _per_minute(timeline.throttled, timeline.bin_seconds)
            for start, n in zip(x, throttled, strict=True):
                if n:
                    ax.axvspan(start, start + width, color=COLOURS["throttled"], alpha=0.12, lw=0)
            right = ax.twinx()
            centres = [start + width / 2 for start in x]
            right.plot(
                centres,
                throttled,
                color=COLOURS["throttled"],
                marker="o",
                ms=3,
                label="throttled answers (429 / SlowDown)",
            )
            right.set_ylabel(f"throttled {_per(timeline.bin_seconds)}", color=COLOURS["throttled"])
            right.set_ylim(bottom=0, top=max(1.0, max(throttled) * 1.15))
            right.spines["right"].set_visible(True)
            handles = ax.get_legend_handles_labels()
            more = right.get_legend_handles_labels()
            figure.legend(
                handles[0] + more[0], handles[1] + more[1], loc="outside upper right", ncols=2
            )
        return _svg(figure, "submitted", "submissions and throttled answers per minute, last run")


def _duration(seconds: float, _: object = None) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def history_chart(runs: Sequence[RunBar]) -> str:
    with _figure("history") as figure:
        ax = figure.subplots()
        if not runs:
            _note(ax, "no run yet")
            return _svg(figure, "history", "run history")
        x = list(range(len(runs)))
        success = [run.success for run in runs]
        failed = [run.failed for run in runs]
        ax.bar(x, success, 0.7, color=COLOURS["success"], label="success")
        ax.bar(x, failed, 0.7, bottom=success, color=COLOURS["failed"], label="failed")
        ax.set_ylabel("items")
        _counts_on(ax.yaxis)
        labels = [f"#{run.run_id}\n{run.started_at:%m-%d}" for run in runs]
        step = max(1, len(runs) // 12)
        ax.set_xticks(x[::step], labels[::step])
        top = max(1, *(s + f for s, f in zip(success, failed, strict=True)))
        ax.set_ylim(0, top * 1.18)
        for i, run in enumerate(runs):
            code = "running" if run.exit_code is None else f"exit {run.exit_code}"
            ax.text(
                i,
                success[i] + failed[i] + top * 0.02,
                code,
                ha="center",
                va="bottom",
                fontsize=7,
                color="#444444",
            )
        right = ax.twinx()
        longest = max((run.seconds or 0.0 for run in runs), default=0.0)
        scale, unit = _unit(longest)
        durations = [float("nan") if run.seconds is None else run.seconds / scale for run in runs]
        right.plot(
            x, durations, color=COLOURS["duration"], marker="D", ms=4, lw=1, label="duration"
        )
        right.set_ylim(bottom=0)
        right.set_ylabel(f"duration ({unit})", color=COLOURS["duration"])
        right.spines["right"].set_visible(True)
        handles = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        figure.legend(
            handles[0] + more[0], handles[1] + more[1], loc="outside upper right", ncols=3
        )
        return _svg(figure, "history", "run history: items finished per run and duration")


def latency_chart(latency: Latency) -> str:
    with _figure("latency") as figure:
        ax = figure.subplots()
        if not latency.count:
            _note(ax, "no item has reached a final state after submission yet")
            return _svg(figure, "latency", "latency distribution")
        counts, edges = _coarser(latency.counts, latency.edges, _LATENCY_BARS)
        ax.stairs(counts, edges, fill=True, color="#90a4ae")
        ax.set_xscale("log")
        low, high = edges[0], edges[-1]
        ax.set_xlim(min(low, high / 10) / 1.5, max(high, low * 10) * 1.5)
        if high / low < 1000:  # a few decades: label 1, 2 and 5 of each
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(_duration_short))
        ax.xaxis.set_minor_formatter(NullFormatter())
        # CI states end times to the second: under a second or two, read the shape, not the value.
        ax.set_xlabel("from submission to final state (log scale; CI end times are to the second)")
        ax.set_ylabel("items")
        _counts_on(ax.yaxis)
        marks = (
            ("p50", latency.p50, "#37474f"),
            ("p90", latency.p90, "#ef6c00"),
            ("p99", latency.p99, "#c62828"),
        )
        for label, value, colour in marks:
            if value is not None:
                ax.axvline(
                    value, color=colour, lw=1.2, ls="--", label=f"{label} {_duration_short(value)}"
                )
        figure.legend(loc="outside upper right", ncols=3)
        return _svg(figure, "latency", "distribution of time from submission to final state")


def _coarser(
    counts: Sequence[int], edges: Sequence[float], bars: int
) -> tuple[list[int], list[float]]:
    """Neighbouring bins merged so that about `bars` remain: fine bins make a sparse
    histogram look like noise."""
    step = max(1, -(-len(counts) // bars))
    merged = [sum(counts[i : i + step]) for i in range(0, len(counts), step)]
    return merged, [*edges[:-1:step], edges[-1]]


def _duration_short(seconds: float, _: object = None) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 100:
        return f"{seconds:.3g}s"
    return _duration(seconds)


_LEVEL_STATES: Final = (
    ("success", ("success",)),
    ("failed", ("failed",)),
    ("cancelled", ("cancelled",)),
    ("skipped", ("skipped",)),
    ("in flight", ("submitting", "unknown", "submitted")),
    ("pending", ("pending",)),
)


def levels_chart(levels: Mapping[int, Mapping[str, int]]) -> str:
    rows = {f"JobLevel {level}": states for level, states in levels.items()}
    return _states_chart(rows, "levels", "items per JobLevel")


def jobs_chart(jobs: Mapping[str, Mapping[str, int]]) -> str:
    return _states_chart(dict(jobs), "jobs", "items per job")


def _states_chart(groups: Mapping[str, Mapping[str, int]], name: str, title: str) -> str:
    """One horizontal bar per group, split by state."""
    size = (2 * _SIZE[0], 1.4 + 0.4 * max(1, len(groups)))
    with _figure(name, size) as figure:
        ax = figure.subplots()
        if not groups:
            _note(ax, "no items")
            return _svg(figure, name, title)
        rows = list(groups)
        y = list(range(len(rows)))
        left = [0] * len(rows)
        for label, states in _LEVEL_STATES:
            widths = [sum(groups[row].get(s, 0) for s in states) for row in rows]
            if any(widths):
                ax.barh(y, widths, 0.6, left=left, color=COLOURS[label], label=label)
                left = [a + b for a, b in zip(left, widths, strict=True)]
        ax.set_yticks(y, rows)
        ax.set_xlabel("items")
        _counts_on(ax.xaxis)
        figure.legend(loc="outside upper right", ncols=6)
        return _svg(figure, name, f"{title} by state")
