"""`picjobs emulator`: on start it prints the two lines a user copies, and both work as printed."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image
from qcloud_cos import CosConfig, CosS3Client

from orchestrator.cli import cli
from orchestrator.manifest import load_manifest

BUCKET = "clitest-1250000000"


@contextmanager
def emulator(data: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[list[str]]:
    """`picjobs emulator` in a child process; yields the first two lines it printed."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COS_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "emulator",
            "--port",
            "0",
            "--data",
            str(data),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**environ, **(env or {})},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(2)]
        assert all(lines), proc.stderr.read() if proc.stderr else ""
        yield lines
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)  # drains and closes both pipes


def _seed(data: Path) -> None:
    (data / BUCKET / "in").mkdir(parents=True)
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 20, 30)).save(out, "PNG")
    (data / BUCKET / "in" / "a.png").write_bytes(out.getvalue())


def _sdk(line: str) -> Any:
    assert line.startswith("CosConfig(")
    config = eval(line, {"CosConfig": CosConfig, "os": os})  # the line exactly as printed
    return CosS3Client(config, retry=0)


def test_it_prints_the_endpoint_line_and_a_cos_config_line_that_work_as_printed(
    tmp_path: Path,
) -> None:
    data = tmp_path / "buckets"
    _seed(data)
    with emulator(data) as (endpoint_line, sdk_line):
        manifest = tmp_path / "m.toml"
        manifest.write_text(
            f'name = "m"\n[target]\nbucket = "{BUCKET}"\nregion = "ap-guangzhou"\n'
            f'{endpoint_line}\n[source]\nprefix = "in/"\n'
            '[job]\nprocess_rule = "imageMogr2/rotate/90"\noutput = "out/{key}"\n'
        )
        endpoint = load_manifest(manifest).target.endpoint
        with urllib.request.urlopen(f"{endpoint}/_emulator/info") as answer:
            info = json.load(answer)
        listed = _sdk(sdk_line).list_objects(Bucket=BUCKET)

    assert endpoint_line.startswith('endpoint = "http://127.0.0.1:')
    assert f'bucket = "{BUCKET}"' in endpoint_line
    assert 'SecretId="any", SecretKey="any", IP="127.0.0.1"' in sdk_line
    assert info["default_bucket"] == BUCKET
    assert [item["Key"] for item in listed["Contents"]] == ["in/a.png"]


def test_with_credentials_the_sdk_line_reads_them_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "buckets"
    _seed(data)
    keys = {"COS_SECRET_ID": "AKIDcliEmulator0001", "COS_SECRET_KEY": "cli-emulator-key"}
    with emulator(data, env=keys) as (_, sdk_line):
        for name, value in keys.items():
            monkeypatch.setenv(name, value)
        listed = _sdk(sdk_line).list_objects(Bucket=BUCKET)

    assert "cli-emulator-key" not in sdk_line
    assert 'SecretKey=os.environ["COS_SECRET_KEY"]' in sdk_line
    assert [item["Key"] for item in listed["Contents"]] == ["in/a.png"]


def test_an_unreadable_allow_callbacks_to_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["emulator", "--data", str(tmp_path), "--allow-callbacks-to", "http://x"]
    )
    assert result.exit_code == 2
    assert "--allow-callbacks-to" in result.output
    assert "not an address, network, host name or 'public'" in result.output


def test_with_no_output_bytes_it_says_so_in_its_config(tmp_path: Path) -> None:
    data = tmp_path / "buckets"
    _seed(data)
    with emulator(data, "--no-output-bytes") as (endpoint_line, _):
        endpoint = endpoint_line.split('"')[1]
        with urllib.request.urlopen(f"{endpoint}/_emulator/config") as answer:
            config = json.load(answer)

    assert config["write_outputs"] is False
