"""`picjobs report --format html`: what the page says, that it is self-contained, and that
ledger data never becomes markup."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from orchestrator.htmlreport import EXTRA_HINT

from .conftest import HOSTILE_KEY, RenderedRun, invoke
from .page_parts import Page, headline

REPO = Path(__file__).resolve().parents[2]


def test_the_page_references_nothing_outside_itself(rendered: RenderedRun) -> None:
    page = Page(rendered.page.read_text(encoding="utf-8"))

    assert page.external_references() == []
    assert page.tags.count("svg") == 5  # the charts are inline
    assert "Content-Security-Policy" in page.raw


def test_the_headline_gives_the_ledgers_totals_by_state_and_the_last_runs_exit_code(
    rendered: RenderedRun,
) -> None:
    page = Page(rendered.page.read_text(encoding="utf-8"))
    counts = rendered.counts
    in_flight = counts["submitting"] + counts["unknown"] + counts["submitted"]

    assert rendered.exit_codes == (1, 1)
    assert headline(page) == {
        "total": sum(counts.values()),
        "success": counts["success"],
        "failed": counts["failed"],
        "cancelled": counts["cancelled"],
        "in-flight": in_flight,
        "pending": counts["pending"],
    }
    assert (counts["success"], counts["failed"]) == (100, 8)
    assert page.by_id["success-share"] == f"{100 * 100 / 108:.1f} %"
    assert page.by_id["exit-code"] == "1"
    assert page.by_id["in-flight"] == "Nothing is in flight: every item is in a final state."


def test_the_throttling_the_last_run_met_is_counted(rendered: RenderedRun) -> None:
    page = Page(rendered.page.read_text(encoding="utf-8"))
    text = " ".join(" ".join(page.text).split())

    met = text.split("The last run met ", 1)[1].split(" throttled answers", 1)[0]
    assert int(met.replace(",", "")) > 0


def test_failures_are_listed_by_code_and_message_with_the_commands_that_rerun_them(
    rendered: RenderedRun,
) -> None:
    page = Page(rendered.page.read_text(encoding="utf-8"))
    text = " ".join(page.text)

    assert "8 failed items in 8 groups by Code and Message" in " ".join(text.split())
    assert text.count("ResourceNotFound") == 8
    manifest = str(rendered.manifest)
    assert page.by_id["rerun"] == (
        f"picjobs report {manifest} --failed-only -o failed.csv "
        f"picjobs run --retry-failed {manifest}"
    )


def test_keys_and_messages_from_the_ledger_are_text_not_markup(rendered: RenderedRun) -> None:
    page = Page(rendered.page.read_text(encoding="utf-8"))

    assert "script" not in page.tags
    assert "b" not in page.tags
    assert HOSTILE_KEY in page.text  # an example key, shown as it is


def test_html_without_an_output_file_is_a_usage_error(rendered: RenderedRun) -> None:
    code, out, err = invoke("report", str(rendered.manifest), "--format", "html")

    assert code == 2
    assert out == ""
    assert err == "picjobs: error: --format html needs -o FILE and cannot take --failed-only\n"


def test_without_matplotlib_the_error_names_the_extra_to_install(
    rendered: RenderedRun, tmp_path: Path
) -> None:
    script = (
        "import sys; sys.modules['matplotlib'] = None; from orchestrator.cli import main; main()"
    )
    page = tmp_path / "r.html"
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "report",
            str(rendered.manifest),
            "--format",
            "html",
            "-o",
            str(page),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == 2
    assert run.stderr == f"picjobs: error: --format html needs matplotlib: {EXTRA_HINT}\n"
    assert EXTRA_HINT == "pip install 'picjobs[report]'"
    assert not page.exists()
