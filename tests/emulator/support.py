"""Helpers for the emulator tests: the test bucket, a client that signs like an SDK, and job
bodies in the official SDK's element order."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import aiohttp
from lxml import etree
from multidict import CIMultiDict
from PIL import Image
from yarl import URL

from orchestrator.cloud.signing import Credentials, authorization, uri_encode
from orchestrator.emulator.server import EmulatorConfig, RunningEmulator

BUCKET = "examplebucket-1250000000"
REGION = "ap-guangzhou"
CREDS = Credentials("AKIDemulatorTestSecretId0000000000", "emulatorTestSecretKey00000000000")
CI_HOST = f"{BUCKET}.ci.{REGION}.myqcloud.com"
COS_HOST = f"{BUCKET}.cos.{REGION}.myqcloud.com"


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (40, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def xml(self) -> etree._Element:
        return etree.fromstring(self.body)

    def text(self, path: str) -> str | None:
        return self.xml().findtext(path)

    def texts(self, path: str) -> list[str]:
        return [node.text or "" for node in self.xml().findall(path)]


class Client:
    """Signs every request like the official SDK: host, content-*, x-ci-/x-cos- headers and
    every query parameter, over the decoded path."""

    def __init__(
        self, session: aiohttp.ClientSession, emu: RunningEmulator, credentials: Credentials
    ) -> None:
        self.session = session
        self.emu = emu
        self.credentials = credentials

    @property
    def queue_id(self) -> str:
        return self.emu.backend.queue_id_for(BUCKET)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        host: str = CI_HOST,
        credentials: Credentials | None = None,
        window: tuple[int, int] | None = None,
        sign: bool = True,
        signed_params: Mapping[str, str] | None = None,
        wire_path: str | None = None,
    ) -> Reply:
        params = dict(params or {})
        all_headers = {"Host": host, **(headers or {})}
        if body:
            all_headers.setdefault("Content-Type", "application/xml")
            all_headers["Content-Length"] = str(len(body))
        if sign:
            now = int(time.time())
            start, end = window or (now - 60, now + 600)
            all_headers["Authorization"] = authorization(
                method,
                path,
                params if signed_params is None else signed_params,
                all_headers,
                credentials or self.credentials,
                start,
                end,
            )
        query = "&".join(f"{uri_encode(k)}={uri_encode(v)}" for k, v in params.items())
        encoded = wire_path or quote(path, safe="/-_.~,").replace("./", ".%2F")
        raw = encoded + (f"?{query}" if query else "")
        url = URL(self.emu.url + raw, encoded=True)
        # A stream, not raw bytes: aiohttp warns that a large raw body may block the event loop.
        data = io.BytesIO(body) if body else None
        async with self.session.request(method, url, data=data, headers=all_headers) as r:
            return Reply(r.status, CIMultiDict(r.headers), await r.read())

    async def submit(self, body: bytes, path: str = "/pic_jobs") -> Reply:
        return await self.request("POST", path, body=body)

    async def control(self, method: str, name: str, payload: Any = None) -> Any:
        url = f"{self.emu.url}/_emulator/{name}"
        async with self.session.request(method, url, json=payload) as r:
            assert r.status == 200, await r.text()
            return await r.json()


def job_xml(
    *,
    input_object: str = "photos/cat.jpg",
    output_object: str = "out/cat.jpg",
    rule: str | None = "imageMogr2/rotate/90",
    queue_id: str | None = None,
    output_bucket: str = BUCKET,
    extra_operation: str = "",
    extra: str = "",
    is_pic_info: str | None = "true",
    tag: str = "PicProcess",
) -> bytes:
    """A submission body in the Python SDK's element order (ci-api.md §14)."""
    pic = ""
    if rule is not None:
        info = f"<IsPicInfo>{is_pic_info}</IsPicInfo>" if is_pic_info is not None else ""
        pic = f"<PicProcess>{info}<ProcessRule>{escape(rule)}</ProcessRule></PicProcess>"
    queue = f"<QueueId>{queue_id}</QueueId>" if queue_id else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<Request><Input><Object>{escape(input_object)}</Object></Input><Tag>{tag}</Tag>"
        f"<Operation>{pic}<Output><Bucket>{output_bucket}</Bucket><Region>{REGION}</Region>"
        f"<Object>{escape(output_object)}</Object></Output>{extra_operation}</Operation>"
        f"{queue}{extra}</Request>"
    ).encode()


def escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


async def submit_ok(client: Client, **kwargs: Any) -> str:
    kwargs.setdefault("queue_id", client.queue_id)
    reply = await client.submit(job_xml(**kwargs))
    assert reply.status == 200, reply.body
    job_id = reply.text("JobsDetail/JobId")
    assert job_id
    return job_id


def with_config(config: EmulatorConfig, **changes: Any) -> EmulatorConfig:
    return replace(config, **changes)
