"""Secrets stay secret: no key or token in logs, ledger, reports, metrics or errors; private
file modes; TLS always verified."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.signing import Credentials
from orchestrator.emulator.metadata import METADATA_PREFIX
from orchestrator.emulator.server import EmulatorThread
from orchestrator.exceptions import CIError, Disposition
from tests.support import BUCKET, emulator_thread, put_images, write_manifest

SECRET_KEY = "sEcReT-kEy-4f1c9a7b2e-DoNotLeak"
TOKEN = "ToKeN-8d3e1f0a6c-DoNotLeakEither"
CREDS = Credentials("AKIDsecretsTest000001", SECRET_KEY, TOKEN)


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[EmulatorThread]:
    data = tmp_path / "data"
    put_images(data, [f"s/{i}.png" for i in range(4)])
    put_images(data, ["s/broken.png"], body=b"not an image")
    with emulator_thread(data, credentials=CREDS) as running:
        yield running


def _env(secret_key: str = SECRET_KEY) -> dict[str, str]:
    return {
        **os.environ,
        "COS_SECRET_ID": CREDS.secret_id,
        "COS_SECRET_KEY": secret_key,
        "COS_SECURITY_TOKEN": TOKEN,
        "PICJOBS_ENDPOINT": "",
    }


def _leaks(text: str | bytes) -> list[str]:
    blob = text.encode() if isinstance(text, str) else text
    return [s for s in (SECRET_KEY, TOKEN) if s.encode() in blob]


def test_a_full_run_leaves_no_secret_in_any_output_or_file(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    manifest = write_manifest(tmp_path, emu.url, 'prefix = "s/"')
    runner = CliRunner()
    outputs = []
    for args in (
        ["run", "--metrics-file", str(tmp_path / "m.prom"), str(manifest)],
        ["run", "--log-format", "json", "--retry-failed", str(manifest)],
        ["status", "--json", str(manifest)],
        ["report", "--format", "jsonl", str(manifest)],
        ["report", "-o", str(tmp_path / "report.csv"), str(manifest)],
        ["report", "--failed-only", "-o", str(tmp_path / "failed.csv"), str(manifest)],
        ["queue", "list", "--manifest", str(manifest), "--json"],
    ):
        result = runner.invoke(cli, args, env=_env())
        assert result.exit_code in (0, 1), (args, result.output)
        outputs += [result.stdout, result.stderr]

    assert "success 4" in outputs[0]
    assert "failed 1" in outputs[0]
    assert [o for o in outputs if _leaks(o)] == []
    files = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and "data" not in p.relative_to(tmp_path).parts
    ]
    assert {p.name for p in files} >= {
        "nightly.sqlite",
        "nightly.sqlite.lock",
        "m.prom",
        "report.csv",
    }
    assert [p.name for p in files if _leaks(p.read_bytes())] == []


def test_errors_from_a_wrong_key_name_neither_the_key_nor_the_token(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    manifest = write_manifest(tmp_path, emu.url, 'prefix = "s/"')
    wrong = "wRoNg-" + SECRET_KEY
    result = CliRunner().invoke(cli, ["run", str(manifest)], env=_env(wrong))
    assert result.exit_code != 0
    assert "SignatureDoesNotMatch" in result.output or "AccessDenied" in result.output
    assert _leaks(result.output) == []
    assert wrong not in result.output


def test_ledger_lock_and_report_files_are_private(tmp_path: Path, emu: EmulatorThread) -> None:
    manifest = write_manifest(tmp_path, emu.url, 'prefix = "s/"')
    CliRunner().invoke(cli, ["run", "--quiet", str(manifest)], env=_env())
    CliRunner().invoke(cli, ["report", "-o", str(tmp_path / "r.csv"), str(manifest)], env=_env())
    ledger = tmp_path / ".picjobs" / "nightly.sqlite"
    for path in (ledger, Path(f"{ledger}.lock"), tmp_path / "r.csv"):
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_credentials_and_clients_never_show_the_secret_in_their_repr() -> None:
    settings = ClientSettings(BUCKET, "ap-guangzhou", CREDS)
    assert _leaks(repr(CREDS)) == []
    assert _leaks(repr(settings)) == []
    assert _leaks(str(CREDS)) == []


@pytest.fixture
def self_signed_https(tmp_path: Path) -> Iterator[int]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    ports: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="<Response/>", content_type="application/xml")

    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def serve() -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return runner

    def main() -> None:
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(serve())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(10)
    yield ports[0]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


async def test_an_https_endpoint_with_an_untrusted_certificate_is_refused(
    self_signed_https: int,
) -> None:
    settings = ClientSettings(
        BUCKET, "ap-guangzhou", CREDS, endpoint=f"https://127.0.0.1:{self_signed_https}"
    )
    async with CIClient(settings) as client:
        with pytest.raises(CIError) as caught:
            await client.list_queues()
    assert caught.value.disposition is Disposition.PERMANENT
    assert "certificate" in str(caught.value).lower()
    assert _leaks(str(caught.value)) == []


WEB_IDENTITY_TOKEN = "eyJhbGciOiJSUzI1NiJ9.WeBiDeNtItY-DoNotLeak"


@pytest.fixture
def temporary_emu(tmp_path: Path) -> Iterator[EmulatorThread]:
    data = tmp_path / "data"
    put_images(data, [f"s/{i}.png" for i in range(4)])
    put_images(data, ["s/broken.png"], body=b"not an image")
    with emulator_thread(data, credentials=CREDS, temporary_credentials=600.0) as running:
        yield running


class _Everything(logging.Handler):
    """Every record of every picjobs logger, at any level, formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def _all_log_lines() -> Iterator[list[str]]:
    handler = _Everything()
    names = [
        "orchestrator",
        *(n for n in logging.Logger.manager.loggerDict if n.startswith("orchestrator.")),
    ]
    names += ["orchestrator.cloud.credentials", "orchestrator.cloud.credential_sources"]
    saved = {}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).removeHandler(handler)


def _source_env(tmp_path: Path, emu: EmulatorThread, source: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COS_", "TENCENTCLOUD_", "TKE_", "PICJOBS_"))
    }
    env["HOME"] = str(tmp_path / "home")
    if source == "profile":
        folder = tmp_path / "home" / ".tencentcloud"
        folder.mkdir(parents=True)
        (folder / "credentials").write_text(
            f"[default]\nsecret_id = {CREDS.secret_id}\nsecret_key = {SECRET_KEY}\n"
            f"token = {TOKEN}\n"
        )
    elif source == "cvm-role":
        env["PICJOBS_METADATA_ENDPOINT"] = emu.url + METADATA_PREFIX
    else:
        token = tmp_path / "token"
        token.write_text(WEB_IDENTITY_TOKEN)
        env |= {
            "TKE_REGION": "ap-guangzhou",
            "TKE_PROVIDER_ID": "cls-emulator",
            "TKE_WEB_IDENTITY_TOKEN_FILE": str(token),
            "TKE_ROLE_ARN": "qcs::cam::uin/100000000001:roleName/picjobs",
            "PICJOBS_STS_ENDPOINT": emu.url,
        }
    return env


@pytest.mark.parametrize("source", ["profile", "cvm-role", "tke-oidc"])
def test_no_temporary_key_or_token_of_any_source_leaks_into_output_logs_or_files(
    tmp_path: Path, temporary_emu: EmulatorThread, source: str
) -> None:
    manifest = write_manifest(tmp_path, temporary_emu.url, 'prefix = "s/"')
    text = manifest.read_text().replace("[source]", f'credentials = "{source}"\n[source]', 1)
    manifest.write_text(text)
    env = _source_env(tmp_path, temporary_emu, source)
    runner = CliRunner()
    outputs: list[str] = []
    with _all_log_lines() as lines:
        for args in (
            ["run", "--metrics-file", str(tmp_path / "m.prom"), str(manifest)],
            ["run", "--log-format", "json", "--retry-failed", str(manifest)],
            ["status", "--json", str(manifest)],
            ["report", "--format", "jsonl", str(manifest)],
            ["report", "-o", str(tmp_path / "report.csv"), str(manifest)],
            ["queue", "list", "--manifest", str(manifest), "--json"],
        ):
            result = runner.invoke(cli, args, env=env)
            assert result.exit_code in (0, 1), (args, result.output)
            outputs += [result.stdout, result.stderr]
    assert "success 4" in outputs[0]
    issuer = temporary_emu.running.emulator.issuer
    assert issuer is not None
    secrets = [SECRET_KEY, TOKEN, WEB_IDENTITY_TOKEN]
    for issued in issuer.issued.values():
        secrets += [issued.credentials.secret_key, issued.credentials.token or ""]
    if source != "profile":
        assert len(secrets) > 3

    def leaks(blob: str | bytes) -> list[str]:
        data = blob.encode() if isinstance(blob, str) else blob
        return [s for s in secrets if s and s.encode() in data]

    assert len(lines) > 5
    assert [line for line in lines if leaks(line)] == []
    assert [o for o in outputs if leaks(o)] == []
    files = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file()
        and "data" not in p.relative_to(tmp_path).parts
        and "home" not in p.relative_to(tmp_path).parts
        and p.name != "token"
    ]
    assert {p.name for p in files} >= {"nightly.sqlite", "m.prom", "report.csv"}
    assert [p.name for p in files if leaks(p.read_bytes())] == []
