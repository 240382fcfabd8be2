"""`picjobs run` with [notify]: a message when a night goes wrong, a heartbeat either way."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.emulator.server import EmulatorThread
from tests.notify.receiver import Receiver, receiver
from tests.support import BUCKET, emulator_thread, env, put_images, write_manifest

SECRET = "robotkey0123456789abcdef"
HC_UUID = "5f6d2c1e-0000-4000-8000-c0ffee000001"


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[EmulatorThread]:
    data = tmp_path / "data"
    put_images(data, [f"img/{i}.png" for i in range(4)])
    put_images(data, ["img/broken-1.png", "img/broken-2.png"], body=b"not an image at all")
    with emulator_thread(data) as running:
        yield running


def _manifest(tmp_path: Path, emu: EmulatorThread, notify: str) -> Path:
    return write_manifest(tmp_path, emu.url, 'prefix = "img/"', "[notify]\n" + notify)


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env())
    return result.exit_code, result.stdout, result.stderr


def _targets(hook: Receiver) -> str:
    return (
        f'urls = ["{hook.url(f"/hooks/{SECRET}", "json")}"]\n'
        f'heartbeat = "{hook.url(f"/ping/{HC_UUID}")}"\n'
    )


def test_a_failing_run_sends_one_message_with_counts_and_codes_and_pings_start_and_exit(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    with receiver() as hook:
        manifest = _manifest(tmp_path, emu, _targets(hook))
        code, _, err = _invoke("run", str(manifest))
    assert code == 1, err
    # The exit ping and the message go out side by side; the start ping always comes first.
    assert hook.paths()[0] == f"/ping/{HC_UUID}/start"
    assert sorted(hook.paths()[1:]) == [f"/hooks/{SECRET}", f"/ping/{HC_UUID}/1"]
    message = next(r for r in hook.requests if r.path.startswith("/hooks/")).json()
    assert message["title"] == "picjobs nightly: exit 1, failed"
    body = message["message"]
    assert "success 4, failed 2" in body
    assert "x2, e.g. img/broken-1.png" in body
    assert f"picjobs report {manifest} --failed-only -o failed.csv" in body
    assert len(body) < 2000


def test_a_successful_run_sends_no_message_by_default_but_pings_the_heartbeat(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    put_images(data, [f"img/{i}.png" for i in range(3)])
    with emulator_thread(data) as emu, receiver() as hook:
        manifest = _manifest(tmp_path, emu, _targets(hook))
        code, _, err = _invoke("run", str(manifest))
        assert code == 0, err
        assert hook.paths() == [f"/ping/{HC_UUID}/start", f"/ping/{HC_UUID}"]
        manifest.write_text(manifest.read_text() + 'on = ["success", "failed"]\n')
        code, _, _ = _invoke("run", str(manifest))
    assert code == 0
    messages = [r.json() for r in hook.requests if r.path.startswith("/hooks/")]
    assert [m["title"] for m in messages] == ["picjobs nightly: exit 0, success"]


def test_a_usage_error_after_loading_notifies_as_failed_with_its_one_line_error(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    ledger_dir = tmp_path / ".picjobs"
    ledger_dir.write_text("a file where the ledger's folder should be")
    with receiver() as hook:
        code, _, err = _invoke("run", str(_manifest(tmp_path, emu, _targets(hook))))
    assert code == 2
    message = next(r for r in hook.requests if r.path.startswith("/hooks/")).json()
    assert "did not run" in message["message"]
    assert err.strip().removeprefix("picjobs: error: ") in message["message"]
    assert hook.paths()[0] == f"/ping/{HC_UUID}/start"
    assert f"/ping/{HC_UUID}/2" in hook.paths()


def test_a_receiver_that_refuses_changes_nothing_and_is_logged_once(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    with receiver(status=503) as hook:
        code, _, err = _invoke("run", str(_manifest(tmp_path, emu, _targets(hook))))
    assert code == 1
    assert err.count("notification 1 (json) was not delivered") == 1
    assert err.count("heartbeat start was not delivered: HTTP 503") == 1
    assert err.count("heartbeat was not delivered: HTTP 503") == 1


def test_a_receiver_that_hangs_delays_the_exit_by_the_budget_at_most(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    with receiver(hang=True) as hook:
        manifest = _manifest(tmp_path, emu, _targets(hook))
        began = time.monotonic()
        code, _, err = _invoke("run", str(manifest))
        elapsed = time.monotonic() - began
    assert code == 1
    assert "notification 1 (json) was not delivered" in err
    assert elapsed < 10 + 15  # the 10 s budget plus a six-item run on a busy machine


def test_no_notification_url_secret_appears_in_any_output_or_file(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    with receiver(status=500) as hook:
        manifest = _manifest(tmp_path, emu, _targets(hook))
        metrics = tmp_path / "metrics.prom"
        outputs = [_invoke("run", "--metrics-file", str(metrics), str(manifest))]
        outputs.append(_invoke("status", "--json", str(manifest)))
        outputs.append(_invoke("report", "--format", "jsonl", str(manifest)))
        outputs.append(_invoke("notify-test", str(manifest)))
        outputs.append(_invoke("run", "--log-format", "json", str(manifest)))
    texts = [out + err for _, out, err in outputs]
    files = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != manifest]
    for secret in (SECRET, HC_UUID):
        assert not any(secret in text for text in texts)
        assert not any(secret.encode() in blob for blob in files)


def test_notify_test_sends_to_every_target_and_says_which_worked(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    with receiver() as good, receiver(status=500) as bad:
        urls = f'urls = ["{good.url("/a", "json")}", "{bad.url("/b", "json")}"]\n'
        code, out, _ = _invoke("notify-test", str(_manifest(tmp_path, emu, urls)))
        assert good.paths() == ["/a"]
    assert code == 1
    assert out.splitlines() == [
        "notification 1 (json): ok",
        "notification 2 (json): FAIL  the service refused it or could not be reached",
    ]


def test_notify_test_without_targets_is_a_usage_error(tmp_path: Path, emu: EmulatorThread) -> None:
    code, _, err = _invoke("notify-test", str(write_manifest(tmp_path, emu.url, 'prefix = "img/"')))
    assert code == 2
    assert err.endswith("[notify] urls: no notification target to test\n")


@pytest.mark.parametrize(
    ("notify", "expected"),
    [
        (f'urls = ["nosuchservice://{SECRET}"]', "[notify] urls: entry 1 is not a notification"),
        (f'urls = ["{SECRET}"]', "[notify] urls: entry 1 is not a notification URL"),
        (
            'on = ["sucess"]',
            "unknown event 'sucess'; use success, failed, tripped, incomplete (did you mean 'success'?)",
        ),
        (f'heartbeat = "ftp://hc/{SECRET}"', "[notify] heartbeat: must be an http(s) URL"),
        ('webhook = "x"', "unknown key"),
    ],
)
def test_a_bad_notify_table_is_a_one_line_error_that_never_repeats_the_url(
    tmp_path: Path, emu: EmulatorThread, notify: str, expected: str
) -> None:
    code, _, err = _invoke("run", str(_manifest(tmp_path, emu, notify + "\n")))
    assert code == 2
    assert err.count("\n") == 1
    assert expected in err
    assert SECRET not in err


def test_the_manifests_notify_config_is_not_in_status_json(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    with receiver() as hook:
        manifest = _manifest(tmp_path, emu, _targets(hook))
        _invoke("run", str(manifest))
    code, out, _ = _invoke("status", "--json", str(manifest))
    assert code == 0
    assert "notify" not in json.loads(out)
    assert BUCKET not in SECRET
