"""`picjobs queue`: the real command against the emulator over loopback, exact exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.cloud.signing import Credentials
from orchestrator.emulator.model import NotifyConfig, QueueState
from orchestrator.emulator.server import EmulatorConfig, EmulatorThread

BUCKET = "photos-1250000000"
REGION = "ap-guangzhou"
CREDS = Credentials("AKIDqueueCommandTests01", "queue-command-test-secret")


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorThread]:
    (tmp_path / "data" / BUCKET).mkdir(parents=True)
    monkeypatch.setenv("COS_SECRET_ID", CREDS.secret_id)
    monkeypatch.setenv("COS_SECRET_KEY", CREDS.secret_key)
    monkeypatch.delenv("COS_SECURITY_TOKEN", raising=False)
    monkeypatch.delenv("PICJOBS_ENDPOINT", raising=False)
    config = EmulatorConfig(
        data_dir=tmp_path / "data", default_bucket=BUCKET, credentials=CREDS, rate=None
    )
    with EmulatorThread(config) as emu:
        yield emu


def _target(emu: EmulatorThread) -> list[str]:
    return ["--bucket", BUCKET, "--region", REGION, "--endpoint", emu.url]


def _queue_id(emu: EmulatorThread) -> str:
    return emu.backend.queue_id_for(BUCKET)


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["queue", *args])


def test_list_shows_the_buckets_queue_as_a_table(emulator: EmulatorThread) -> None:
    result = _invoke("list", *_target(emulator))
    assert result.exit_code == 0, result.output
    qid = _queue_id(emulator)
    assert result.output.splitlines() == [
        f"{'QueueId':<{len(qid)}}  Name               State   MaxSize  MaxConcurrent  Notify",
        f"{qid}  queue-pic-process  Active    10000             10  Off",
    ]


def test_list_json_gives_every_field_of_every_queue(emulator: EmulatorThread) -> None:
    result = _invoke("list", "--json", *_target(emulator))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["bucket"], data["region"]) == (BUCKET, REGION)
    [queue] = data["queues"]
    assert queue["queue_id"] == _queue_id(emulator)
    assert (queue["name"], queue["state"]) == ("queue-pic-process", "Active")
    assert (queue["max_size"], queue["max_concurrent"]) == (10000, 10)
    assert queue["category"] == "PicProcessing"
    assert queue["notify"]["State"] == "Off"


def test_list_filtered_by_a_state_no_queue_is_in_says_so(emulator: EmulatorThread) -> None:
    result = _invoke("list", "--state", "Paused", *_target(emulator))
    assert result.exit_code == 0, result.output
    assert result.output == f"bucket {BUCKET} has no pic queue in state Paused\n"


def test_show_prints_one_queue_field_by_field(emulator: EmulatorThread) -> None:
    qid = _queue_id(emulator)
    result = _invoke("show", qid, *_target(emulator))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:6] == [
        f"QueueId:             {qid}",
        "Name:                queue-pic-process",
        "State:               Active",
        "MaxSize:             10000",
        "MaxConcurrent:       10",
        "Category:            PicProcessing",
    ]
    assert "Notify:              Off" in lines


def test_show_of_a_queue_the_bucket_does_not_have_exits_2(emulator: EmulatorThread) -> None:
    result = _invoke("show", "p" + "0" * 32, *_target(emulator))
    assert result.exit_code == 2
    assert result.output == (
        f"picjobs: error: queue p{'0' * 32} does not exist in bucket {BUCKET}\n"
    )


def test_pause_then_resume_changes_the_state_and_keeps_name_and_notifications(
    emulator: EmulatorThread,
) -> None:
    backend, qid = emulator.backend, _queue_id(emulator)
    notify = NotifyConfig(url="http://cb.example.com/ci", state="On", event="TaskFinish")
    backend.update_queue(BUCKET, qid, "nightly-thumbs", QueueState.ACTIVE, notify)

    paused = _invoke("pause", qid, *_target(emulator))
    assert paused.exit_code == 0, paused.output
    assert paused.output == f"{qid}: Paused (was Active)\n"
    assert backend.queue(BUCKET).state is QueueState.PAUSED
    assert backend.queue(BUCKET).name == "nightly-thumbs"
    assert backend.queue(BUCKET).notify == notify

    resumed = _invoke("resume", qid, "--json", *_target(emulator))
    assert resumed.exit_code == 0, resumed.output
    data = json.loads(resumed.output)
    assert data["changed"] is True
    assert data["queue"]["state"] == "Active"
    assert data["queue"]["notify"]["Url"] == "http://cb.example.com/ci"
    assert backend.queue(BUCKET).state is QueueState.ACTIVE
    assert backend.queue(BUCKET).notify == notify


def test_pausing_a_paused_queue_sends_no_update(emulator: EmulatorThread) -> None:
    qid = _queue_id(emulator)
    assert _invoke("pause", qid, *_target(emulator)).exit_code == 0
    updates = emulator.backend.stats.snapshot()["requests"]["PUT /picqueue/{id}"]

    again = _invoke("pause", qid, *_target(emulator))

    assert again.exit_code == 0, again.output
    assert again.output == f"{qid}: already Paused\n"
    assert emulator.backend.stats.snapshot()["requests"]["PUT /picqueue/{id}"] == updates


def test_notify_sets_url_events_and_format_and_keeps_the_queue_state(
    emulator: EmulatorThread,
) -> None:
    qid = _queue_id(emulator)
    assert _invoke("pause", qid, *_target(emulator)).exit_code == 0
    result = _invoke(
        "notify",
        qid,
        "--url",
        "https://cb.example.com/ci",
        "--event",
        "TaskFinish",
        "--event",
        "WorkflowFinish",
        "--format",
        "JSON",
        *_target(emulator),
    )
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"{qid}: notifications On: https://cb.example.com/ci (TaskFinish,WorkflowFinish, JSON)\n"
    )
    queue = emulator.backend.queue(BUCKET)
    assert queue.state is QueueState.PAUSED
    assert queue.notify == NotifyConfig(
        url="https://cb.example.com/ci",
        state="On",
        type="Url",
        event="TaskFinish,WorkflowFinish",
        result_format="JSON",
    )


def test_notify_off_keeps_the_url_for_later(emulator: EmulatorThread) -> None:
    qid = _queue_id(emulator)
    url = "https://cb.example.com/ci"
    assert _invoke("notify", qid, "--url", url, *_target(emulator)).exit_code == 0

    off = _invoke("notify", qid, "--state", "Off", *_target(emulator))

    assert off.exit_code == 0, off.output
    assert off.output == f"{qid}: notifications Off\n"
    notify = emulator.backend.queue(BUCKET).notify
    assert (notify.state, notify.url, notify.event) == ("Off", url, "TaskFinish")


def test_notify_on_without_a_url_exits_2_and_changes_nothing(emulator: EmulatorThread) -> None:
    qid = _queue_id(emulator)
    result = _invoke("notify", qid, *_target(emulator))
    assert result.exit_code == 2
    assert "need --url with an http:// or https:// address" in result.output
    assert emulator.backend.queue(BUCKET).notify == NotifyConfig()


def test_notify_through_tdmq_needs_an_mq_name(emulator: EmulatorThread) -> None:
    qid = _queue_id(emulator)
    missing = _invoke("notify", qid, "--type", "TDMQ", *_target(emulator))
    assert missing.exit_code == 2
    assert "need --mq-name" in missing.output

    given = _invoke(
        "notify",
        qid,
        "--type",
        "TDMQ",
        "--mq-name",
        "jobs",
        "--mq-region",
        "gz",
        *_target(emulator),
    )
    assert given.exit_code == 0, given.output
    notify = emulator.backend.queue(BUCKET).notify
    assert (notify.type, notify.mq_name, notify.mq_region) == ("TDMQ", "jobs", "gz")


def test_a_manifest_supplies_bucket_region_and_endpoint(
    emulator: EmulatorThread, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.toml"
    manifest.write_text(
        f'name = "m"\n[target]\nbucket = "{BUCKET}"\nregion = "{REGION}"\n'
        f'endpoint = "{emulator.url}"\n[source]\nprefix = "a/"\n'
        '[job]\nprocess_rule = "imageMogr2/rotate/90"\noutput = "out/{key}"\n'
    )
    result = _invoke("pause", _queue_id(emulator), "--manifest", str(manifest))
    assert result.exit_code == 0, result.output
    assert emulator.backend.queue(BUCKET).state is QueueState.PAUSED


def test_without_a_bucket_and_region_the_command_exits_2() -> None:
    result = _invoke("list")
    assert result.exit_code == 2
    assert result.output == (
        "picjobs: error: name the bucket and region: --bucket and --region, or --manifest\n"
    )


def test_an_embedded_endpoint_is_refused_with_exit_2() -> None:
    result = _invoke("list", "--bucket", BUCKET, "--region", REGION, "--endpoint", "embedded")
    assert result.exit_code == 2
    assert "endpoint 'embedded' starts a fresh emulator for each command" in result.output


def test_without_credentials_the_command_exits_2(
    emulator: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COS_SECRET_KEY")
    result = _invoke("list", *_target(emulator))
    assert result.exit_code == 2
    assert "COS_SECRET_KEY is not set" in result.output


def test_a_wrong_secret_key_is_refused_by_ci_with_exit_1(
    emulator: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COS_SECRET_KEY", "not-the-key")
    result = _invoke("pause", _queue_id(emulator), *_target(emulator))
    assert result.exit_code == 1
    assert result.output.startswith("picjobs: error: HTTP 401 InvalidAuthorization")
    assert emulator.backend.queue(BUCKET).state is QueueState.ACTIVE
