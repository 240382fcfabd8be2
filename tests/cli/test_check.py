"""`picjobs check` against the emulator: each check passing, and failing with what to do."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioresponses import aioresponses
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.emulator.backend import PRESET_TEMPLATES
from orchestrator.emulator.server import EmulatorThread
from tests.notify.receiver import receiver
from tests.support import BUCKET, CREDS, emulator_thread, env, put_images, write_manifest


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[EmulatorThread]:
    data = tmp_path / "data"
    put_images(data, [f"img/{i}.png" for i in range(3)])
    with emulator_thread(data) as running:
        yield running


def _check(manifest: Path, *args: str, **extra: str) -> tuple[int, dict[str, str]]:
    result = CliRunner().invoke(cli, ["check", *args, str(manifest)], env={**env(), **extra})
    lines = {}
    for line in result.stdout.splitlines():
        status, name, detail = line.split(maxsplit=2)
        lines[name] = f"{status} {detail}"
    return result.exit_code, lines


def _manifest(tmp_path: Path, emu: EmulatorThread, *, target: str = "", extra: str = "") -> Path:
    path = write_manifest(tmp_path, emu.url, 'prefix = "img/"', extra=extra)
    path.write_text(path.read_text().replace("[source]", target + "[source]", 1))
    return path


def test_every_check_passes_on_a_ready_bucket(tmp_path: Path, emu: EmulatorThread) -> None:
    code, lines = _check(_manifest(tmp_path, emu))
    assert code == 0
    assert list(lines) == [
        "manifest",
        "credentials",
        "clock",
        "bucket",
        "ci",
        "queue",
        "template",
        "rate",
    ]
    assert lines["credentials"] == "ok env (COS_SECRET_ID)"
    assert lines["bucket"] == f"ok {BUCKET}: prefix 'img/' readable, 3 objects on the first page"
    assert (
        lines["queue"].startswith("ok p") and "is Active, room for 10000 of 10000" in lines["queue"]
    )
    assert lines["template"] == "skip the manifest uses process_rule"
    assert lines["rate"] == "ok 100/s within ap-guangzhou's quota of 100/s"
    assert lines["clock"].startswith("ok within ")


def test_json_output_carries_every_check(tmp_path: Path, emu: EmulatorThread) -> None:
    result = CliRunner().invoke(cli, ["check", "--json", str(_manifest(tmp_path, emu))], env=env())
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert [c["check"] for c in document["checks"]][:2] == ["manifest", "credentials"]


def test_a_wrong_key_fails_and_says_what_to_check(tmp_path: Path, emu: EmulatorThread) -> None:
    code, lines = _check(_manifest(tmp_path, emu), COS_SECRET_KEY="wrong-key")
    assert code == 1
    assert lines["bucket"].startswith("FAIL refused: HTTP 403 SignatureDoesNotMatch")
    assert "check the SecretId/SecretKey" in lines["bucket"]
    assert lines["ci"].startswith("FAIL refused: HTTP 401 InvalidAuthorization")


def test_a_missing_bucket_fails(tmp_path: Path, emu: EmulatorThread) -> None:
    manifest = _manifest(tmp_path, emu)
    manifest.write_text(manifest.read_text().replace(BUCKET, "absent-1250000000", 1))
    code, lines = _check(manifest)
    assert code == 1
    assert lines["bucket"] == (
        "FAIL absent-1250000000 does not exist in ap-guangzhou; check [target] bucket"
        " (with its -APPID suffix) and region"
    )


def test_a_paused_queue_fails_and_names_the_command_that_resumes_it(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    manifest = _manifest(tmp_path, emu)
    queue_id = emu.backend.queue_id_for(BUCKET)
    paused = CliRunner().invoke(
        cli, ["queue", "pause", queue_id, "--manifest", str(manifest)], env=env()
    )
    assert paused.exit_code == 0, paused.output
    code, lines = _check(manifest)
    assert code == 1
    assert lines["queue"] == (
        f"FAIL {queue_id} is Paused; picjobs queue resume {queue_id}, or run with --resume-queue"
    )


def test_a_queue_id_that_does_not_exist_fails(tmp_path: Path, emu: EmulatorThread) -> None:
    manifest = _manifest(tmp_path, emu, target='queue_id = "p00000000000000000000000000000000"\n')
    code, lines = _check(manifest)
    assert code == 1
    assert lines["queue"].startswith("FAIL p00000000000000000000000000000000 does not exist")


def test_a_skewed_clock_fails(tmp_path: Path) -> None:
    data = tmp_path / "data"
    put_images(data, ["img/0.png"])
    with emulator_thread(data, clock_skew=1200.0) as emu:
        code, lines = _check(_manifest(tmp_path, emu))
    assert code == 1
    found = re.match(r"FAIL this host's clock is (-\d+) s off the service's", lines["clock"])
    assert found is not None
    assert abs(int(found[1]) + 1200) <= 1  # the Date header has whole seconds
    assert "synchronise it" in lines["clock"]
    assert lines["bucket"].startswith("ok")  # corrected, the requests themselves go through


def test_a_rate_over_the_regions_quota_fails(tmp_path: Path, emu: EmulatorThread) -> None:
    code, lines = _check(_manifest(tmp_path, emu, extra="[limits]\nrate = 150\n"))
    assert code == 1
    assert lines["rate"] == (
        "FAIL [limits] rate 150/s exceeds ap-guangzhou's quota of 100/s; lower [limits] rate"
        " to 100 or less, or ask Tencent Cloud for a higher quota"
    )


def test_the_default_rate_follows_an_overseas_regions_quota(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    manifest = _manifest(tmp_path, emu)
    manifest.write_text(manifest.read_text().replace("ap-guangzhou", "ap-singapore"))
    _code, lines = _check(manifest)
    assert lines["rate"] == "ok 50/s within ap-singapore's quota of 50/s"


def test_credentials_that_do_not_resolve_fail_and_skip_what_needs_them(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    manifest = _manifest(tmp_path, emu, target='credentials = "profile"\n')
    code, lines = _check(manifest, HOME=str(tmp_path / "empty"))
    assert code == 1
    assert lines["credentials"].startswith("FAIL no credentials: profile: no credentials file at")
    assert lines["bucket"] == "skip needs credentials"
    assert lines["rate"].startswith("ok")


def test_a_manifest_error_exits_2(tmp_path: Path, emu: EmulatorThread) -> None:
    manifest = _manifest(tmp_path, emu, target='credentials = "magic"\n')
    code, lines = _check(manifest)
    assert code == 2
    assert lines["manifest"].startswith("FAIL ")
    assert (
        "[target] credentials: must be one of auto, env, profile, cvm-role, tke-oidc"
        in (lines["manifest"])
    )


def test_a_template_the_bucket_has_passes(tmp_path: Path, emu: EmulatorThread) -> None:
    template_id = PRESET_TEMPLATES[0].template_id
    manifest = _manifest(tmp_path, emu)
    manifest.write_text(
        manifest.read_text().replace(
            'process_rule = "imageMogr2/rotate/90"', f'template_id = "{template_id}"'
        )
    )
    code, lines = _check(manifest)
    assert code == 0
    assert lines["template"] == f"ok {template_id} exists"


def test_a_missing_template_fails(tmp_path: Path, emu: EmulatorThread) -> None:
    manifest = write_manifest(tmp_path, emu.url, 'prefix = "img/"')
    text = manifest.read_text().replace(
        'process_rule = "imageMogr2/rotate/90"', 'template_id = "t0000000000000000000000000000000a"'
    )
    manifest.write_text(text)
    code, lines = _check(manifest)
    assert code == 1
    assert lines["template"].startswith("FAIL t0000000000000000000000000000000a does not exist")


def test_every_job_of_a_manifest_with_several_has_its_template_checked(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    present = PRESET_TEMPLATES[0].template_id
    missing = "t0000000000000000000000000000000b"
    manifest = write_manifest(tmp_path, emu.url, 'prefix = "img/"')
    text = manifest.read_text().replace("[job]\n", '[[job]]\nname = "rotated"\n')
    text += f'[[job]]\nname = "a"\ntemplate_id = "{present}"\noutput = "a/{{key}}"\n'
    text += f'[[job]]\nname = "b"\ntemplate_id = "{missing}"\noutput = "b/{{key}}"\n'
    manifest.write_text(text)
    code, lines = _check(manifest)
    assert code == 1
    assert lines["template"].startswith(f"FAIL {missing} does not exist")


_TEMPLATES = """<Response><TotalCount>1</TotalCount><PageNumber>1</PageNumber><PageSize>10</PageSize>
<TemplateList><TemplateId>t1a2b</TemplateId><Name>thumbs</Name><Tag>PicProcess</Tag>
</TemplateList></Response>"""


@pytest.mark.parametrize(("template_id", "exists"), [("t1a2b", True), ("t9z9z", False)])
async def test_the_client_asks_ci_whether_a_template_exists(template_id: str, exists: bool) -> None:
    settings = ClientSettings(BUCKET, "ap-guangzhou", CREDS)
    url = f"https://{BUCKET}.ci.ap-guangzhou.myqcloud.com/template"
    body = _TEMPLATES if exists else "<Response><TotalCount>0</TotalCount></Response>"
    with aioresponses() as mocked:
        mocked.get(
            f"{url}?tag=PicProcess&ids={template_id}&pageNumber=1&pageSize=10",
            body=body,
            content_type="application/xml",
        )
        async with CIClient(settings) as client:
            assert await client.template_exists(template_id) is exists


def _notify_lines(result_stdout: str) -> list[str]:
    return [line for line in result_stdout.splitlines() if line.split()[1] == "notify"]


def test_check_notify_sends_the_test_message_to_every_target_one_line_each(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    with receiver() as good, receiver(status=500) as bad:
        urls = f'urls = ["{good.url("/hook/s3cr3t", "json")}", "{bad.url("/b/s3cr3t", "json")}"]'
        manifest = _manifest(tmp_path, emu, extra=f"[notify]\n{urls}\n")
        result = CliRunner().invoke(cli, ["check", "--notify", str(manifest)], env=env())
        assert good.paths() == ["/hook/s3cr3t"]
    assert result.exit_code == 1
    assert _notify_lines(result.stdout) == [
        "ok    notify       notification 1 (json): took the test message",
        "FAIL  notify       notification 2 (json): the service refused it or could not be"
        " reached; check that [notify] url and that this host can reach it",
    ]
    assert "s3cr3t" not in result.output


def test_check_notify_without_targets_fails_and_says_what_to_add(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    result = CliRunner().invoke(
        cli, ["check", "--notify", str(_manifest(tmp_path, emu))], env=env()
    )
    assert result.exit_code == 1
    assert _notify_lines(result.stdout) == [
        "FAIL  notify       [notify] has no urls; add urls to [notify]"
    ]


def test_check_without_notify_sends_nothing(tmp_path: Path, emu: EmulatorThread) -> None:
    with receiver() as hook:
        manifest = _manifest(
            tmp_path, emu, extra=f'[notify]\nurls = ["{hook.url("/h", "json")}"]\n'
        )
        code, lines = _check(manifest)
    assert code == 0
    assert "notify" not in lines
    assert hook.requests == []


def test_check_notify_in_json_lists_each_target(tmp_path: Path, emu: EmulatorThread) -> None:
    with receiver() as hook:
        manifest = _manifest(
            tmp_path, emu, extra=f'[notify]\nurls = ["{hook.url("/h", "json")}"]\n'
        )
        result = CliRunner().invoke(cli, ["check", "--notify", "--json", str(manifest)], env=env())
    assert result.exit_code == 0
    checks = json.loads(result.stdout)["checks"]
    assert checks[-1] == {
        "check": "notify",
        "status": "ok",
        "detail": "notification 1 (json): took the test message",
        "fix": "",
    }
