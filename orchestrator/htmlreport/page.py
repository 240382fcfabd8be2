"""The report page: one HTML file with its CSS and SVG charts inline, and nothing to fetch.

Every value that comes from the ledger or the user (keys, Codes, Messages, names, paths) goes
through `html.escape`; a Content-Security-Policy forbids any request the page might make.
"""

from __future__ import annotations

import html
import shlex
from datetime import datetime
from typing import Final

from orchestrator.exit_codes import ExitCode
from orchestrator.htmlreport import charts
from orchestrator.htmlreport.data import ReportData, RunBar

__all__ = ["render_page"]

_MESSAGE_CHARS: Final = 400
_EXIT_MEANING: Final = {
    ExitCode.OK: "every item succeeded",
    ExitCode.FAILED: "finished with failed items",
    ExitCode.USAGE: "usage or manifest error",
    ExitCode.LOCKED: "another run held the ledger",
    ExitCode.TRIPPED: "the failure breaker tripped",
    ExitCode.INCOMPLETE: "incomplete; the next run resumes",
}
_TILES: Final = (
    ("total", "items", None),
    ("success", "succeeded", "success"),
    ("failed", "failed", "failed"),
    ("cancelled", "cancelled", "cancelled"),
    ("in-flight", "in flight", "in flight"),
    ("pending", "pending", "pending"),
)
_CSS: Final = """
:root { --ok: #2e7d32; --bad: #c62828; --warn: #ef6c00; --run: #1565c0; --ink: #1f2328;
        --muted: #5f6670; --line: #d8dce0; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; font: 14px/1.45 system-ui, -apple-system,
       "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #f6f7f9; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 12px; }
.meta, .muted { color: var(--muted); }
.verdict { margin: 16px 0; padding: 12px 16px; border-radius: 6px; background: #fff;
           border-left: 6px solid var(--muted); font-size: 16px; }
.verdict.ok { border-color: var(--ok); } .verdict.bad { border-color: var(--bad); }
.verdict.running { border-color: var(--run); } .verdict.incomplete { border-color: var(--warn); }
.problems { color: var(--warn); }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 12px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px;
        border-top: 4px solid var(--line); }
.tile .n { display: block; font-size: 26px; font-weight: 600; font-variant-numeric: tabular-nums; }
.tile .l { color: var(--muted); }
.tile.success { border-top-color: var(--ok); } .tile.failed { border-top-color: var(--bad); }
.tile.in-flight { border-top-color: var(--run); } .tile.share { border-top-color: var(--ok); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; }
figure { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 6px;
         padding: 8px; }
figure.wide { grid-column: 1 / -1; }
figcaption { font-weight: 600; padding: 4px 6px 0; }
figure svg { display: block; width: 100%; height: auto; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; vertical-align: top; padding: 8px 10px; border-bottom: 1px solid var(--line); }
th { background: #eef0f3; font-weight: 600; }
td.count { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.code { white-space: nowrap; font-weight: 600; color: var(--bad); }
ul.keys { margin: 0; padding-left: 18px; }
ul.keys li, code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px;
                   word-break: break-all; }
pre { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px;
      white-space: pre-wrap; word-break: break-all; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _n(value: int) -> str:
    return f"{value:,}"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = round(seconds)
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _verdict(data: ReportData) -> str:
    last = data.last_run
    if last is None:
        return '<div class="verdict" id="last-run">No run has been recorded yet.</div>'
    head = f"Last run #{last.run_id}, started {_e(_when(last.started_at))}"
    if data.running and data.holder is not None:
        elapsed = duration((data.generated_at - last.started_at).total_seconds())
        return (
            f'<div class="verdict running" id="last-run">{head}: <strong>running</strong> for '
            f"{elapsed} ({_e(data.holder)})</div>"
        )
    if last.exit_code is None or last.seconds is None:
        return (
            f'<div class="verdict incomplete" id="last-run">{head}: ended without recording '
            "an exit code (killed?); the next run resumes it</div>"
        )
    try:
        meaning = _EXIT_MEANING[ExitCode(last.exit_code)]
    except ValueError:
        meaning = "unknown exit code"
    kind = {0: "ok", 75: "incomplete"}.get(last.exit_code, "bad")
    return (
        f'<div class="verdict {kind}" id="last-run">{head}: <strong>exit '
        f'<span id="exit-code">{last.exit_code}</span></strong> ({_e(meaning)}) after '
        f'<span id="duration">{duration(last.seconds)}</span>, finished '
        f"{_n(last.success + last.failed + last.cancelled)} items ({_n(last.failed)} failed)</div>"
    )


def _tiles(data: ReportData) -> str:
    values = {**data.counts, "total": data.total, "in-flight": data.in_flight}
    tiles = [
        f'<div class="tile {css}"><span class="n" id="count-{key}">{_n(values.get(key, 0))}</span>'
        f'<span class="l">{label}</span></div>'
        for key, label, state in _TILES
        for css in [(state or "total").replace(" ", "-")]
    ]
    share = data.success_share
    shown = "–" if share is None else f"{100 * share:.1f} %"
    tiles.append(
        f'<div class="tile share"><span class="n" id="success-share">{shown}</span>'
        '<span class="l">success share of final items</span></div>'
    )
    return f'<div class="tiles">{"".join(tiles)}</div>'


def _flight(data: ReportData) -> str:
    pending = data.counts.get("pending", 0)
    if data.in_flight == 0 and pending == 0:
        return '<p id="in-flight">Nothing is in flight: every item is in a final state.</p>'
    parts = []
    if data.in_flight:
        parts.append(f"{_n(data.in_flight)} items are in flight (sent to CI, not final yet)")
    if pending:
        parts.append(f"{_n(pending)} are pending (not sent yet)")
    going = "a run is going now" if data.running else "no run is going: the next run picks them up"
    return f'<p id="in-flight">{"; ".join(parts)}; {going}.</p>'


def _failures(data: ReportData, manifest: str) -> str:
    failed = data.counts.get("failed", 0)
    if not failed:
        return '<h2 id="failures">Failures</h2><p>No item has failed.</p>'
    shown = len(data.failures)
    more = (
        f" The {shown} largest of {_n(data.failure_groups)} groups are shown."
        if data.failure_groups > shown
        else ""
    )
    rows = []
    for group in data.failures:
        message = group.message
        if len(message) > _MESSAGE_CHARS:
            message = message[:_MESSAGE_CHARS] + "…"
        keys = "".join(f"<li>{_e(key)}</li>" for key in group.examples)
        rows.append(
            f'<tr><td class="count">{_n(group.count)}</td><td class="code">'
            f"{_e(group.code or '(none)')}</td><td>{_e(message)}</td>"
            f'<td><ul class="keys">{keys}</ul></td></tr>'
        )
    quoted = shlex.quote(manifest)
    if data.shards is None:
        rerun = f"picjobs run --retry-failed {_e(quoted)}"
    else:
        count = data.shards
        rerun = (
            f"for k in $(seq 0 {count - 1}); do\n"
            f"  picjobs run --shard $k/{count} --retry-failed {_e(quoted)}\ndone"
        )
        quoted += f" --shards {count}"
    return (
        f'<h2 id="failures">Failures</h2><p>{_n(failed)} failed items in '
        f"{_n(data.failure_groups)} groups by Code and Message, largest first.{more}</p>"
        "<table><thead><tr><th>items</th><th>Code</th><th>Message</th><th>example keys</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        "<p>To re-run them, write the failed items as a CSV that is itself a valid "
        "<code>[source] csv</code>, or queue them again where they are:</p>"
        f'<pre id="rerun">picjobs report {_e(quoted)} --failed-only -o failed.csv\n'
        f"{rerun}</pre>"
    )


def _problems(data: ReportData) -> str:
    if not data.problems:
        return ""
    lines = "".join(f"<li>{_e(problem)}</li>" for problem in data.problems)
    return f'<ul class="problems" id="shard-problems">{lines}</ul>'


def _runs_note(data: ReportData) -> str:
    if data.runs_total > len(data.runs):
        return f"the last {len(data.runs)} of {_n(data.runs_total)} runs"
    return f"{_n(data.runs_total)} run{'s' if data.runs_total != 1 else ''}"


def _throttle_note(last: RunBar | None) -> str:
    if last is None:
        return ""
    if last.throttled is None:
        return "Throttled answers were not recorded for the last run (an older picjobs, or killed)."
    return f"The last run met {_n(last.throttled)} throttled answers (429 or SlowDown)."


def render_page(data: ReportData, *, manifest: str, version: str) -> str:
    name = _e(data.name)
    figures = [
        ("", "Items reaching a final state in the last run", charts.finished_chart(data.timeline)),
        (
            "",
            "Submissions accepted by CI, and throttled answers, in the last run",
            charts.submitted_chart(data.timeline),
        ),
        (
            "",
            f"Run history ({_runs_note(data)}): items finished and duration",
            charts.history_chart(data.runs),
        ),
        ("", "Time from submission to final state", charts.latency_chart(data.latency)),
        ("wide", "Items per JobLevel", charts.levels_chart(data.levels)),
    ]
    if len(data.jobs) > 1:
        figures.append(("wide", "Items per job", charts.jobs_chart(data.jobs)))
    body = "".join(
        f'<figure class="{css}"><figcaption>{_e(caption)}</figcaption>{svg}</figure>'
        for css, caption, svg in figures
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>picjobs report: {name}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{name}</h1>
<p class="meta">ledger {_e(data.ledger)} · {_runs_note(data)} · generated {_e(_when(data.generated_at))}</p>
</header>
<section id="headline">
{_verdict(data)}
{_problems(data)}
{_tiles(data)}
{_flight(data)}
</section>
<h2>Throughput, history and latency</h2>
<p class="muted">{_e(_throttle_note(data.last_run))}</p>
<section class="charts">{body}</section>
{_failures(data, manifest)}
<footer>picjobs {_e(version)} · one self-contained file: no script, font or image is fetched</footer>
</body>
</html>
"""
