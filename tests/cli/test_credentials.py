"""Each credential source, chosen by `[target] credentials`, runs a job against the emulator;
a source that fails says why in one line and exits 2."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.emulator.metadata import METADATA_PREFIX
from orchestrator.emulator.server import EmulatorThread
from tests.support import CREDS, emulator_thread, put_images, write_manifest

ROLE_ARN = "qcs::cam::uin/100000000001:roleName/picjobs"
_CLEARED = (
    "COS_SECRET_ID",
    "COS_SECRET_KEY",
    "COS_SECURITY_TOKEN",
    "TENCENTCLOUD_SECRET_ID",
    "TENCENTCLOUD_SECRET_KEY",
    "TENCENTCLOUD_SESSION_TOKEN",
    "TENCENTCLOUD_PROFILE",
    "TKE_REGION",
    "TKE_PROVIDER_ID",
    "TKE_WEB_IDENTITY_TOKEN_FILE",
    "TKE_ROLE_ARN",
    "PICJOBS_METADATA_ENDPOINT",
    "PICJOBS_STS_ENDPOINT",
    "PICJOBS_ENDPOINT",
)


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[EmulatorThread]:
    data = tmp_path / "data"
    put_images(data, [f"img/{i}.png" for i in range(3)])
    with emulator_thread(data, temporary_credentials=600.0) as running:
        yield running


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(home: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    # Nothing listens there: `auto` and `cvm-role` find no metadata service quickly.
    base["PICJOBS_METADATA_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}/latest/meta-data/"
    return {**base, "HOME": str(home), **extra}


def _run(tmp_path: Path, emu: EmulatorThread, choice: str, env: dict[str, str]) -> tuple[int, str]:
    extra = "" if choice == "auto" else f'credentials = "{choice}"\n'
    manifest = write_manifest(tmp_path, emu.url, 'prefix = "img/"')
    text = manifest.read_text().replace("[source]", extra + "[source]", 1)
    manifest.write_text(text)
    result = CliRunner().invoke(cli, ["run", str(manifest)], env=env)
    return result.exit_code, result.stderr


def _profile(home: Path, name: str = "default", secret_key: str = CREDS.secret_key) -> None:
    folder = home / ".tencentcloud"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "credentials").write_text(
        f"[{name}]\nsecret_id = {CREDS.secret_id}\nsecret_key = {secret_key}\n"
    )


def _tke(tmp_path: Path, emu: EmulatorThread, token: str = "eyJhbGciOi.sa-token") -> dict[str, str]:
    token_file = tmp_path / "token"
    token_file.write_text(token)
    return {
        "TKE_REGION": "ap-guangzhou",
        "TKE_PROVIDER_ID": "cls-emulator",
        "TKE_WEB_IDENTITY_TOKEN_FILE": str(token_file),
        "TKE_ROLE_ARN": ROLE_ARN,
        "PICJOBS_STS_ENDPOINT": emu.url,
    }


def test_env_keys_of_the_sdk_are_read(tmp_path: Path, emu: EmulatorThread) -> None:
    env = _env(
        tmp_path,
        TENCENTCLOUD_SECRET_ID=CREDS.secret_id,
        TENCENTCLOUD_SECRET_KEY=CREDS.secret_key,
    )
    assert _run(tmp_path, emu, "env", env)[0] == 0


def test_the_profile_file_in_home_is_read(tmp_path: Path, emu: EmulatorThread) -> None:
    _profile(tmp_path)
    code, err = _run(tmp_path, emu, "profile", _env(tmp_path))
    assert code == 0
    assert "credentials from profile" in err


def test_a_named_profile_comes_from_the_sdk_variable(tmp_path: Path, emu: EmulatorThread) -> None:
    _profile(tmp_path, "nightly")
    env = _env(tmp_path, TENCENTCLOUD_PROFILE="nightly")
    assert _run(tmp_path, emu, "profile", env)[0] == 0


def test_the_cvm_role_comes_from_the_metadata_service(tmp_path: Path, emu: EmulatorThread) -> None:
    env = _env(tmp_path, PICJOBS_METADATA_ENDPOINT=emu.url + METADATA_PREFIX)
    code, err = _run(tmp_path, emu, "cvm-role", env)
    assert code == 0
    assert "credentials from cvm-role (role picjobs-emulator-role), temporary, expires" in err


def test_the_tke_oidc_role_comes_from_sts(tmp_path: Path, emu: EmulatorThread) -> None:
    code, err = _run(tmp_path, emu, "tke-oidc", _env(tmp_path, **_tke(tmp_path, emu)))
    assert code == 0
    assert f"credentials from tke-oidc (role {ROLE_ARN}), temporary" in err


def test_auto_takes_the_first_source_that_answers(tmp_path: Path, emu: EmulatorThread) -> None:
    env = _env(tmp_path, PICJOBS_METADATA_ENDPOINT=emu.url + METADATA_PREFIX)
    code, err = _run(tmp_path, emu, "auto", env)
    assert code == 0
    assert "credentials from cvm-role" in err


@pytest.mark.parametrize(
    ("choice", "setup", "reason"),
    [
        ("env", {}, "no credentials: env: set COS_SECRET_ID and COS_SECRET_KEY"),
        ("env", {"COS_SECRET_ID": "AKIDonly"}, "env: COS_SECRET_KEY is not set (its pair is)"),
        ("profile", {}, "profile: no credentials file at "),
        ("profile", {"TENCENTCLOUD_PROFILE": "absent"}, "has no [absent] profile"),
        ("cvm-role", {}, "cvm-role: cannot reach the metadata service at http://127.0.0.1:"),
        ("tke-oidc", {}, "tke-oidc: TKE_REGION, TKE_PROVIDER_ID,"),
        ("auto", {}, "no credentials found: env: set COS_SECRET_ID"),
    ],
)
def test_a_source_that_fails_says_why_in_one_line_and_exits_2(
    tmp_path: Path, emu: EmulatorThread, choice: str, setup: dict[str, str], reason: str
) -> None:
    if "TENCENTCLOUD_PROFILE" in setup:
        _profile(tmp_path)
    code, err = _run(tmp_path, emu, choice, _env(tmp_path, **setup))
    assert code == 2
    assert err.count("\n") == 1
    assert reason in err
    assert "Traceback" not in err


def test_a_role_the_metadata_service_does_not_know_is_named(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    env = _env(tmp_path, PICJOBS_METADATA_ENDPOINT=emu.url + "/_emulator/metadata/nowhere/")
    code, err = _run(tmp_path, emu, "cvm-role", env)
    assert code == 2
    assert "no CAM role is bound to this instance" in err


def test_sts_refusing_the_role_is_named(tmp_path: Path, emu: EmulatorThread) -> None:
    env = _env(tmp_path, **{**_tke(tmp_path, emu), "TKE_ROLE_ARN": "not-an-arn"})
    code, err = _run(tmp_path, emu, "tke-oidc", env)
    assert code == 2
    assert err.count("\n") == 1
    assert "tke-oidc: STS at 127.0.0.1:" in err
    assert "refused: InvalidParameter.RoleArn" in err


def test_an_empty_web_identity_token_is_named(tmp_path: Path, emu: EmulatorThread) -> None:
    code, err = _run(tmp_path, emu, "tke-oidc", _env(tmp_path, **_tke(tmp_path, emu, token="")))
    assert code == 2
    assert "tke-oidc: the token file" in err and "is empty" in err
