"""The aiohttp client for CI and COS: typed calls for the pic-job, queue, template and COS
listing APIs, each one signed request through `orchestrator.cloud.transport`."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence

import aiohttp

from orchestrator.cloud import wire
from orchestrator.cloud.keypage import KeyPage, parse_key_page
from orchestrator.cloud.models import (
    DescribeResult,
    JobDetail,
    JobPage,
    JobRequest,
    ObjectPage,
    Queue,
    QueuePage,
)
from orchestrator.cloud.transport import (
    STRAGGLING,
    ClientSettings,
    Limiter,
    MiB,
    Transport,
    translate_errors,
)

__all__ = ["STRAGGLING", "CIClient", "ClientSettings", "Limiter", "MiB", "translate_errors"]


class CIClient(Transport):
    """Typed calls for the CI pic-job, queue and template APIs and the COS listing API."""

    # -- CI pic jobs --

    async def submit(self, request: JobRequest) -> JobDetail:
        body = wire.build_submit(request)
        return wire.parse_submit(await self._call("submit", "POST", "/pic_jobs", body=body))

    async def describe(self, job_ids: Sequence[str]) -> DescribeResult:
        if not job_ids:
            return DescribeResult([], [])
        path = "/pic_jobs/" + ",".join(job_ids)
        return wire.parse_describe(await self._call("describe", "GET", path))

    async def list_jobs_page(
        self,
        *,
        queue_id: str | None = None,
        states: str = "All",
        start_creation_time: str | None = None,
        end_creation_time: str | None = None,
        input_object: str | None = None,
        order_by_time: str = "Desc",
        size: int = 100,
        next_token: str = "",
    ) -> JobPage:
        params = {"tag": "PicProcess", "orderByTime": order_by_time, "states": states}
        params["size"] = str(min(max(size, 1), 100))
        params["nextToken"] = next_token
        for name, value in (
            ("queueId", queue_id),
            ("startCreationTime", start_creation_time),
            ("endCreationTime", end_creation_time),
            ("inputObject", input_object),
        ):
            if value:
                params[name] = value
        return wire.parse_job_page(await self._call("list", "GET", "/pic_jobs", params=params))

    async def list_jobs(
        self,
        *,
        queue_id: str | None = None,
        states: str = "All",
        start_creation_time: str | None = None,
        end_creation_time: str | None = None,
        input_object: str | None = None,
    ) -> AsyncIterator[JobDetail]:
        """Every job matching the filters, following NextToken until it is empty or absent."""
        token = ""
        seen: set[str] = set()
        while True:
            page = await self.list_jobs_page(
                queue_id=queue_id,
                states=states,
                start_creation_time=start_creation_time,
                end_creation_time=end_creation_time,
                input_object=input_object,
                next_token=token,
            )
            for job in page.jobs:
                yield job
            if not page.next_token or page.next_token in seen or not page.jobs:
                return
            seen.add(page.next_token)
            token = page.next_token

    async def cancel(self, job_id: str) -> None:
        # The official SDK leaves `cancel` out of the signed parameters; signing it is also valid.
        await self._call("cancel", "PUT", f"/jobs/{job_id}", params={"cancel": ""})

    # -- queues --

    async def queues_page(
        self,
        *,
        queue_ids: Sequence[str] = (),
        state: str | None = None,
        page_number: int = 1,
        page_size: int = 100,
    ) -> QueuePage:
        params = {"pageNumber": str(page_number), "pageSize": str(page_size)}
        if queue_ids:
            params["queueIds"] = ",".join(queue_ids)
        if state:
            params["state"] = state
        return wire.parse_queue_page(await self._call("queue", "GET", "/picqueue", params=params))

    async def list_queues(self, *, state: str | None = None) -> list[Queue]:
        queues: list[Queue] = []
        page_number = 1
        while True:
            page = await self.queues_page(state=state, page_number=page_number)
            queues.extend(page.queues)
            total = page.total_count
            if not page.queues or total is None or len(queues) >= total:
                return queues
            page_number += 1

    async def update_queue(
        self, queue_id: str, *, name: str, state: str, notify: Mapping[str, str] | None = None
    ) -> Queue:
        body = wire.build_queue_update(name, state, notify)
        data = await self._call("queue_update", "PUT", f"/picqueue/{queue_id}", body=body)
        return wire.parse_queue(data)

    # -- templates --

    async def template_exists(self, template_id: str) -> bool:
        """Whether the PicProcess template exists (`GET /template?ids=`, DescribeMediaTemplates)."""
        params = {"tag": "PicProcess", "ids": template_id, "pageNumber": "1", "pageSize": "10"}
        ids = wire.parse_template_ids(
            await self._call("template", "GET", "/template", params=params)
        )
        return template_id in ids

    # -- COS --

    async def list_objects_page(
        self, *, prefix: str = "", marker: str = "", delimiter: str = "", max_keys: int = 1000
    ) -> ObjectPage:
        params = {
            "prefix": prefix,
            "delimiter": delimiter,
            "marker": marker,
            "max-keys": str(max_keys),
            "encoding-type": "url",
        }
        data = await self._call("list_objects", "GET", "/", service="cos", params=params)
        return wire.parse_object_page(data)

    async def list_key_page(self, *, prefix: str = "", marker: str = "") -> KeyPage:
        """One listing page read for its keys, ETags and times only (see `keypage`)."""
        params = {"prefix": prefix, "delimiter": "", "marker": marker, "max-keys": "1000",
                  "encoding-type": "url"}  # fmt: skip
        data = await self._call("list_objects", "GET", "/", service="cos", params=params)
        return parse_key_page(data)

    async def get_object(self, key: str) -> bytes:
        """The object's bytes as stored (never decompressed), up to `max_body`."""
        return await self._call(
            "get_object", "GET", "/" + key.lstrip("/"), service="cos", decompress=False
        )

    async def iter_object(self, key: str, chunk_size: int = MiB) -> AsyncGenerator[bytes, None]:
        """The object's bytes as stored, in chunks as they arrive: no size cap and no overall
        time limit (only the connect and read timeouts), for objects too big to hold. Close
        it (contextlib.aclosing) when stopping early."""
        s = self.settings
        timeout = aiohttp.ClientTimeout(sock_connect=s.connect_timeout, sock_read=s.read_timeout)
        async with self._open(
            "get_object",
            "GET",
            "/" + key.lstrip("/"),
            service="cos",
            decompress=False,
            timeout=timeout,
        ) as resp:
            while chunk := await resp.content.read(chunk_size):
                yield chunk
