"""`picjobs cancel`: the real command against the emulator, whose clock only moves when told.

Jobs run for JOB_SECONDS of emulator time and the queue runs RUNNING of them at once, so after
`picjobs run --no-wait` the first RUNNING jobs are Running and the rest still Submitted until a
test advances the clock.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from orchestrator.cli import cli
from orchestrator.cloud.signing import Credentials
from orchestrator.emulator.faults import FaultConfig
from orchestrator.emulator.model import QueueState
from orchestrator.emulator.server import EmulatorConfig, EmulatorThread
from orchestrator.ledger import Ledger
from orchestrator.manifest import load_manifest

BUCKET = "photos-1250000000"
REGION = "ap-guangzhou"
CREDS = Credentials("AKIDcancelCommandTests1", "cancel-command-test-secret")
JOB_SECONDS = 1000.0
RUNNING = 2
KEYS = [f"a/{i}.png" for i in range(6)]
CANCEL_ROUTE = "PUT /jobs/{id}?cancel"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorThread]:
    image = _png()
    for key in KEYS:
        path = tmp_path / "data" / BUCKET / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image)
    monkeypatch.setenv("COS_SECRET_ID", CREDS.secret_id)
    monkeypatch.setenv("COS_SECRET_KEY", CREDS.secret_key)
    monkeypatch.delenv("COS_SECURITY_TOKEN", raising=False)
    monkeypatch.delenv("PICJOBS_ENDPOINT", raising=False)
    config = EmulatorConfig(
        data_dir=tmp_path / "data",
        default_bucket=BUCKET,
        region=REGION,
        credentials=CREDS,
        progression="delay",
        job_seconds=JOB_SECONDS,
        queue_max_concurrent=RUNNING,
        rate=None,
    )
    with EmulatorThread(config) as emu:
        yield emu


@pytest.fixture
def manifest(tmp_path: Path, emulator: EmulatorThread) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(
        f'name = "t"\n[target]\nbucket = "{BUCKET}"\nregion = "{REGION}"\n'
        f'endpoint = "{emulator.url}"\n[source]\nprefix = "a/"\n'
        '[job]\nprocess_rule = "imageMogr2/rotate/90"\noutput = "out/{key}"\n'
    )
    return path


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _submit_without_waiting(manifest: Path) -> None:
    result = _invoke("run", "--quiet", "--no-wait", str(manifest))
    assert result.exit_code == 75, result.output


def _ledger(manifest: Path) -> dict[str, tuple[str, str | None]]:
    """key -> (state, job id)."""
    with Ledger.open(load_manifest(manifest).ledger_path) as ledger:
        return {row.key: (str(row.state), row.job_id) for row in ledger.iter_items()}


def _ci_states(emu: EmulatorThread, job_ids: list[str]) -> dict[str, str]:
    jobs, missing = emu.backend.describe(BUCKET, job_ids)
    assert missing == []
    return {job.job_id: job.state.value for job in jobs}


def _jobs_in(manifest: Path, state: str) -> list[str]:
    return sorted(job for st, job in _ledger(manifest).values() if st == state and job)


def test_cancel_cancels_the_jobs_ci_has_not_started_and_leaves_running_ones_alone(
    emulator: EmulatorThread, manifest: Path
) -> None:
    _submit_without_waiting(manifest)
    assert emulator.backend.job_counts()["Running"] == RUNNING

    result = _invoke("cancel", "--quiet", str(manifest))

    assert result.exit_code == 0, result.output
    assert result.output == "t: cancelled 4, already running 2, already final 0\n"
    cancelled, running = _jobs_in(manifest, "cancelled"), _jobs_in(manifest, "submitted")
    assert (len(cancelled), len(running)) == (4, 2)
    assert set(_ci_states(emulator, cancelled).values()) == {"Cancel"}
    assert set(_ci_states(emulator, running).values()) == {"Running"}
    with Ledger.open(load_manifest(manifest).ledger_path) as ledger:
        rows = list(ledger.iter_items(["cancelled"]))
    assert {row.message for row in rows} == {"cancelled with picjobs cancel"}
    assert all(row.finished_at for row in rows)


def test_jobs_that_finished_before_the_cancel_are_recorded_with_their_final_state(
    emulator: EmulatorThread, manifest: Path
) -> None:
    _submit_without_waiting(manifest)
    emulator.backend.advance(JOB_SECONDS + 1)  # the first two succeed, the next two start

    result = _invoke("cancel", "--quiet", str(manifest))

    assert result.exit_code == 0, result.output
    assert result.output == "t: cancelled 2, already running 2, already final 2\n"
    states = sorted(state for state, _ in _ledger(manifest).values())
    assert states == ["cancelled"] * 2 + ["submitted"] * 2 + ["success"] * 2
    assert emulator.backend.job_counts() == {
        "Submitted": 0,
        "Running": 2,
        "Success": 2,
        "Failed": 0,
        "Pause": 0,
        "Cancel": 2,
    }


def test_a_later_run_follows_the_running_jobs_and_never_resubmits_cancelled_items(
    emulator: EmulatorThread, manifest: Path
) -> None:
    _submit_without_waiting(manifest)
    assert _invoke("cancel", "--quiet", str(manifest)).exit_code == 0
    emulator.backend.advance(JOB_SECONDS + 1)

    again = _invoke("run", "--quiet", str(manifest))

    assert again.exit_code == 1  # cancelled items make a finished run exit 1, as failed ones do
    assert "t: success 2, cancelled 4 (0 submitted this run" in again.output
    assert emulator.backend.stats.snapshot()["jobs_created"] == len(KEYS)


def test_a_second_cancel_finds_nothing_left_to_cancel(
    emulator: EmulatorThread, manifest: Path
) -> None:
    _submit_without_waiting(manifest)
    assert _invoke("cancel", "--quiet", str(manifest)).exit_code == 0

    again = _invoke("cancel", "--quiet", str(manifest))

    assert again.exit_code == 0, again.output
    assert again.output == "t: cancelled 0, already running 2, already final 0\n"
    assert emulator.backend.stats.snapshot()["requests"][CANCEL_ROUTE] == 4


def test_cancel_exits_3_and_cancels_nothing_while_a_run_holds_the_ledger(
    emulator: EmulatorThread, manifest: Path
) -> None:
    _submit_without_waiting(manifest)
    with Ledger.open(load_manifest(manifest).ledger_path) as holder:
        holder.lock()
        result = _invoke("cancel", "--quiet", str(manifest))

    assert result.exit_code == 3
    assert "another run holds the ledger lock" in result.output
    assert emulator.backend.job_counts()["Cancel"] == 0
    assert _jobs_in(manifest, "cancelled") == []


def test_pending_items_are_left_alone_unless_pending_is_given(
    emulator: EmulatorThread, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    qid = emulator.backend.queue_id_for(BUCKET)
    target = ["--bucket", BUCKET, "--region", REGION, "--endpoint", emulator.url]
    assert _invoke("queue", "pause", qid, *target).exit_code == 0
    refused = _invoke("run", "--quiet", str(manifest))  # plans every item, submits none
    assert refused.exit_code == 2
    assert "is Paused" in refused.output
    monkeypatch.delenv("COS_SECRET_ID")  # with nothing submitted, CI is not asked at all

    untouched = _invoke("cancel", "--quiet", str(manifest))

    assert untouched.exit_code == 0, untouched.output
    assert untouched.output == (
        "t: cancelled 0, already running 0, already final 0, "
        "pending 6 not touched (--pending cancels them)\n"
    )
    assert {state for state, _ in _ledger(manifest).values()} == {"pending"}

    dropped = _invoke("cancel", "--quiet", "--pending", str(manifest))

    assert dropped.exit_code == 0, dropped.output
    assert dropped.output == (
        "t: cancelled 0, already running 0, already final 0, pending cancelled 6\n"
    )
    assert {state for state, _ in _ledger(manifest).values()} == {"cancelled"}
    assert emulator.backend.stats.snapshot()["jobs_created"] == 0
    assert emulator.backend.queue(BUCKET).state is QueueState.PAUSED


def test_a_cancel_whose_answer_is_lost_is_settled_by_describing_the_job(
    emulator: EmulatorThread, manifest: Path
) -> None:
    _submit_without_waiting(manifest)
    # Every cancel takes effect, then the connection drops before the answer.
    emulator.running.emulator.faults.configure(FaultConfig(reset_after=1.0, routes=(CANCEL_ROUTE,)))

    result = _invoke("cancel", "--quiet", str(manifest))

    assert result.exit_code == 0, result.output
    assert result.output == "t: cancelled 4, already running 2, already final 0\n"
    cancelled = _jobs_in(manifest, "cancelled")
    assert set(_ci_states(emulator, cancelled).values()) == {"Cancel"}
    assert set(_ci_states(emulator, _jobs_in(manifest, "submitted")).values()) == {"Running"}


def test_cancels_that_ci_fails_leave_their_items_outstanding_and_exit_1(
    emulator: EmulatorThread, manifest: Path
) -> None:
    _submit_without_waiting(manifest)
    emulator.running.emulator.faults.configure(FaultConfig(error_500=1.0, routes=(CANCEL_ROUTE,)))

    result = _invoke("cancel", "--quiet", "--log-format", "json", str(manifest))

    assert result.exit_code == 1
    assert result.stdout == (
        "t: cancelled 0, already running 2, already final 0, "
        "errors 4 (still outstanding; run cancel again)\n"
    )
    warnings = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(warnings) == 4
    assert all(
        w["level"] == "warning" and "HTTP 500 InternalError" in w["message"] for w in warnings
    )
    assert _jobs_in(manifest, "cancelled") == []
    assert emulator.backend.job_counts()["Submitted"] == 4


def test_cancel_json_gives_every_count_and_the_exit_code(
    emulator: EmulatorThread, manifest: Path
) -> None:
    _submit_without_waiting(manifest)

    result = _invoke("cancel", "--quiet", "--json", str(manifest))

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "manifest": "t",
        "cancelled": 4,
        "running": 2,
        "final": 0,
        "missing": 0,
        "errors": 0,
        "pending_cancelled": 0,
        "pending": 0,
        "unsettled": 0,
        "exit_code": 0,
    }


def test_cancel_before_any_run_is_a_usage_error(manifest: Path) -> None:
    result = _invoke("cancel", str(manifest))
    assert result.exit_code == 2
    assert "no ledger yet; run the manifest first" in result.output
