"""Job callbacks: what CI POSTs when a job finishes, sent to the job's or the queue's URL.

The backend decides which finished job notifies where (`Backend.take_notifications`); this
module renders the body and sends it. The body follows ci-api.md §8: `<Response><EventName>
TaskFinish</EventName><JobsDetail>…</JobsDetail></Response>` with JobsDetail's children in the
documented example's order, or the same tree as JSON with every leaf a string and empty leaves
left out. Headers, retries and timeout of real callbacks are not documented: the emulator sends
`Content-Type: application/xml` or `application/json`, counts any 2xx as delivered, and tries
`attempts` times with doubling waits from `backoff` seconds.

Where a callback may go: loopback addresses always; otherwise only what `CallbackPolicy.allow`
names. An entry is an address or network (`10.0.0.0/8`, which may be private), a host name
(only its public addresses), or `public` (any public address). No other private address is ever
contacted: a host name is resolved and checked first, and the connection is made only to checked
addresses. Redirects are not followed, and no proxy is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from lxml import etree

from orchestrator.emulator import jobxml, wire
from orchestrator.emulator.backend import Backend
from orchestrator.emulator.model import Job, Notification

__all__ = ["CallbackPolicy", "Notifier", "callback_body"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# JobsDetail and Operation children in the order of the documented callback example; anything
# else the describe answer has (CallBack, CallBackFormat, ...) is not part of a callback.
_DETAIL_ORDER = (
    "Code", "CreationTime", "EndTime", "Input", "JobId", "Message", "Operation", "QueueId",
    "StartTime", "State", "Tag",
)  # fmt: skip
_OPERATION_ORDER = (
    "Output", "PicProcess", "PicProcessResult", "TemplateId", "TemplateName", "UserData",
    "JobLevel",
)  # fmt: skip


# ---------------------------------------------------------------------- bodies


def _ordered(node: etree._Element, order: tuple[str, ...]) -> None:
    children = {child.tag: child for child in node}
    for child in list(node):
        node.remove(child)
    for tag in order:
        if tag in children:
            node.append(children[tag])


def _xml_tree(job: Job) -> etree._Element:
    root = etree.Element("Response")
    etree.SubElement(root, "EventName").text = "TaskFinish"
    detail = jobxml.job_detail(root, job)
    _ordered(detail, _DETAIL_ORDER)
    operation = detail.find("Operation")
    if operation is not None:
        _ordered(operation, _OPERATION_ORDER)
        output = operation.find("Output")
        if output is not None:
            _ordered(output, ("Bucket", "Object", "Region"))
    return root


def _as_json(node: etree._Element) -> Any:
    """Leaves as strings, repeated tags as lists, empty leaves left out (ci-api.md §8)."""
    if len(node) == 0:
        return node.text or None
    result: dict[str, Any] = {}
    for child in node:
        value = _as_json(child)
        if value is None:
            continue
        tag = str(child.tag)
        if tag in result:
            previous = result[tag]
            result[tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            result[tag] = value
    return result


def callback_body(job: Job, result_format: str) -> tuple[bytes, str]:
    """The body of a finished job's callback and its content type."""
    root = _xml_tree(job)
    if result_format == "JSON":
        body = json.dumps(_as_json(root), ensure_ascii=False).encode()
        return body, "application/json"
    return wire.to_bytes(root), "application/xml"


# ---------------------------------------------------------------------- where to


class CallbackRefused(Exception):
    """The URL is not one the policy lets the emulator call."""


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """Where callbacks may go (see the module doc) and how hard to try."""

    allow: tuple[str, ...] = ()
    attempts: int = 4
    backoff: float = 1.0
    timeout: float = 10.0
    # How often the emulator looks for finished jobs while some would notify.
    poll: float = 0.05

    def __post_init__(self) -> None:
        for entry in self.allow:
            if entry != "public" and _network(entry) is None and not _is_host_name(entry):
                raise ValueError(
                    f"not an address, network, host name or 'public': {entry!r} "
                    "(e.g. 203.0.113.7, 10.0.0.0/8, hooks.example.com)"
                )
        if self.attempts < 1 or self.backoff < 0 or self.timeout <= 0 or self.poll <= 0:
            raise ValueError("attempts must be >= 1, backoff >= 0, timeout and poll > 0")

    def permits(self, host: str, address: IPAddress) -> bool:
        if address.is_loopback:
            return True
        for entry in self.allow:
            network = _network(entry)
            if network is not None and address in network:
                return True
        if not address.is_global:
            return False
        return "public" in self.allow or host.lower().rstrip(".") in self._names()

    def _names(self) -> set[str]:
        return {e.lower().rstrip(".") for e in self.allow if _network(e) is None and e != "public"}


def _network(entry: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


def _is_host_name(entry: str) -> bool:
    labels = entry.rstrip(".").split(".")
    return all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _PolicyResolver(AbstractResolver):
    """Name resolution that keeps only the addresses the policy permits, so the connection goes
    where the check said even if the name resolves differently the second time."""

    def __init__(self, policy: CallbackPolicy) -> None:
        self._policy = policy
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        kept = [r for r in found if self._policy.permits(host, ipaddress.ip_address(r["host"]))]
        if not kept:
            raise OSError(f"{host} resolves to no address callbacks may go to")
        return kept

    async def close(self) -> None:
        await self._resolver.close()


# ---------------------------------------------------------------------- sending


class Notifier:
    """Sends the callbacks of finished jobs, in the app's event loop."""

    def __init__(self, backend: Backend, policy: CallbackPolicy | None = None) -> None:
        self.backend = backend
        self.policy = policy or CallbackPolicy()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def running(self, app: web.Application) -> AsyncIterator[None]:
        """For `app.cleanup_ctx`: look for finished jobs while the app serves."""
        self._loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(resolver=_PolicyResolver(self.policy), force_close=True)
        self._session = aiohttp.ClientSession(connector=connector)
        watcher = asyncio.create_task(self._watch())
        try:
            yield
        finally:
            watcher.cancel()
            self.reset()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self._session.close()
            self._session = None
            self._loop = None

    async def _watch(self) -> None:
        while True:
            self.pump()
            await asyncio.sleep(self.policy.poll)

    def pump(self) -> None:
        """Move jobs forward if some would notify, and start sending what finished."""
        if self.backend.notifications_due():
            self.backend.tick()
        for notification in self.backend.take_notifications():
            self.backend.stats.callback("queued")
            task = asyncio.create_task(self._deliver(notification))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def drain(self) -> None:
        """Send what has finished and wait until every callback in flight is done with."""
        self.pump()
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    def reset(self) -> None:
        """Stop sending what is in flight (the emulator is reset or stopping); callable from
        another thread than the app's, as `EmulatorThread` users do."""
        loop = self._loop
        if loop is not None and _running_loop() is not loop and not loop.is_closed():
            loop.call_soon_threadsafe(self._cancel_sending)
        else:
            self._cancel_sending()

    def _cancel_sending(self) -> None:
        for task in list(self._sending):
            task.cancel()
        self._sending.clear()

    async def _deliver(self, notification: Notification) -> None:
        stats, job = self.backend.stats, notification.job
        host = urlsplit(notification.url).hostname or ""
        try:
            await self._check(notification.url)
        except CallbackRefused as exc:
            stats.callback_failed("refused", job.job_id, host, str(exc))
            return
        body, content_type = callback_body(job, notification.result_format)
        reason = ""
        for attempt in range(self.policy.attempts):
            if attempt:
                stats.callback("retries")
                await asyncio.sleep(self.policy.backoff * 2 ** (attempt - 1))
            stats.callback("attempts")
            reason = await self._post(notification.url, body, content_type)
            if not reason:
                stats.callback("sent")
                return
        stats.callback_failed("failed", job.job_id, host, reason)

    async def _post(self, url: str, body: bytes, content_type: str) -> str:
        """POST once; '' when delivered, else why not."""
        assert self._session is not None
        try:
            async with self._session.post(
                url,
                data=body,
                headers={"Content-Type": content_type},
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout),
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return ""
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return type(exc).__name__

    async def _check(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise CallbackRefused("not an http(s) URL")
        literal = _literal(host)
        if literal is not None:
            addresses = [literal]
        elif not self.policy.allow and host != "localhost" and not host.endswith(".localhost"):
            # Only loopback is allowed: no name but localhost is even looked up.
            raise CallbackRefused("a host name other than localhost needs --allow-callbacks-to")
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, None, type=socket.SOCK_STREAM
                )
            except OSError:
                raise CallbackRefused("the host name does not resolve") from None
            addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not any(self.policy.permits(host, address) for address in addresses):
            raise CallbackRefused("not a loopback address, nor one allowed by --allow-callbacks-to")
