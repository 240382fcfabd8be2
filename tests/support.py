"""Helpers for tests that drive the `picjobs` command against an emulator in a thread."""

from __future__ import annotations

import dataclasses
import io
import os
import textwrap
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from orchestrator.cloud.signing import Credentials
from orchestrator.emulator.server import EmulatorConfig, EmulatorThread

BUCKET = "nightly-1250000000"
CREDS = Credentials("AKIDcliTests00000001", "cli-test-secret-key-0001")


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (30, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()


def put_images(data: Path, keys: Iterable[str], body: bytes = PNG) -> None:
    for key in keys:
        path = data / BUCKET / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def write_manifest(
    folder: Path, url: str, source: str, extra: str = "", name: str = "nightly"
) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name = "{name}"
            [target]
            bucket = "{BUCKET}"
            region = "ap-guangzhou"
            endpoint = "{url}"
            [source]
            {source}
            [job]
            process_rule = "imageMogr2/rotate/90"
            output = "out/{{key}}"
            """
        )
        + extra
    )
    return path


def env() -> dict[str, str]:
    return {
        **os.environ,
        "COS_SECRET_ID": CREDS.secret_id,
        "COS_SECRET_KEY": CREDS.secret_key,
        "PICJOBS_ENDPOINT": "",
    }


@contextmanager
def emulator_thread(data: Path, **config: object) -> Iterator[EmulatorThread]:
    (data / BUCKET).mkdir(parents=True, exist_ok=True)
    settings = EmulatorConfig(data_dir=data, default_bucket=BUCKET, credentials=CREDS, rate=None)
    settings = dataclasses.replace(settings, **config)  # type: ignore[arg-type]
    with EmulatorThread(settings) as emu:
        yield emu
