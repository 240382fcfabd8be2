"""The emulator in a process of its own, with the options the benchmarks need.

    python -m benchmarks.serve --data DIR --bucket NAME [--rate R --burst B] [--cpu N]

Credentials come from COS_SECRET_ID / COS_SECRET_KEY, as for `picjobs emulator`. Once the port
is open it prints one JSON line, `{"url": ..., "port": ..., "pid": ...}`, and serves until it is
terminated or its parent process exits. Beside the emulator's own `/_emulator/` control routes it answers two routes of its own:

GET  /_bench/log    every CI and COS request since the last clear, as parallel arrays
                    `t` (monotonic arrival time, the clock of `/_emulator/stats?times=1`),
                    `op` (submit, describe, list, queue, cos) and `status`
POST /_bench/pause  pause the default bucket's pic queue (a run then stops after expansion)
POST /_bench/index  {"bucket": NAME, "keys_file": PATH}: list every key of the file (one a line)
                    as an object of that bucket without writing a file for it (listed and
                    described, all the tiny PNG's bytes), so a million existing outputs cost
                    seconds; gone at the next reset, which rescans the folders

`/_emulator/reset` also clears the log. Recording is a list append per request.

`--cache-images` memoises the emulator's image work (`imaging.process`, `imaging.image_info`)
by input bytes and rule. Both are pure functions, so every answer and every output object stays
the same; only the emulator's CPU per job drops. The benchmarks use it because their inputs are
all one tiny image, and because real CI does its image work on Tencent's machines, not on the
machine that runs the client.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from orchestrator.emulator import imaging
from orchestrator.emulator.app import create_app
from orchestrator.emulator.model import NotifyConfig, QueueState
from orchestrator.emulator.server import EmulatorConfig, build_emulator, config_from_env
from orchestrator.emulator.store import ObjectMeta

__all__ = ["main"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _op(method: str, path: str) -> str:
    if path == "/pic_jobs":
        return "submit" if method == "POST" else "list"
    if path.startswith("/pic_jobs/"):
        return "describe"
    if path.startswith("/picqueue"):
        return "queue"
    if path.startswith("/jobs"):
        return "jobs"
    return "cos"


class RequestLog:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.ops: list[str] = []
        self.statuses: list[int] = []

    def clear(self) -> None:
        self.times, self.ops, self.statuses = [], [], []

    def as_json(self) -> dict[str, list[float] | list[str] | list[int]]:
        return {"t": self.times, "op": self.ops, "status": self.statuses}


_CACHE_ENTRIES = 256


def cache_images() -> None:
    """Memoise the emulator's image processing by (input bytes, rule); see the module doc."""
    process, image_info = imaging.process, imaging.image_info
    processed: dict[tuple[bytes, str], imaging.Processed] = {}
    infos: dict[bytes, imaging.ImageInfo] = {}

    def cached_process(data: bytes, rule: str) -> imaging.Processed:
        found = processed.get((data, rule))
        if found is None:
            found = process(data, rule)
            if len(processed) < _CACHE_ENTRIES:
                processed[(data, rule)] = found
        return found

    def cached_image_info(data: bytes) -> imaging.ImageInfo:
        found = infos.get(data)
        if found is None:
            found = image_info(data)
            if len(infos) < _CACHE_ENTRIES:
                infos[data] = found
        return found

    imaging.process = cached_process
    imaging.image_info = cached_image_info


def build_app(config: EmulatorConfig) -> web.Application:
    emulator = build_emulator(config)
    log = RequestLog()

    @web.middleware
    async def record(request: web.Request, handler: _Handler) -> web.StreamResponse:
        path = request.path
        if path == "/_bench/index" and request.method == "POST":
            return await _index(request)
        if path.startswith("/_bench/"):
            return _bench_route(request, path)
        if path.startswith("/_emulator"):
            if path.rstrip("/") == "/_emulator/reset":
                log.clear()
            return await handler(request)
        arrived = time.monotonic()
        response = await handler(request)
        log.times.append(arrived)
        log.ops.append(_op(request.method, path))
        log.statuses.append(response.status)
        return response

    def _bench_route(request: web.Request, path: str) -> web.StreamResponse:
        if path == "/_bench/log" and request.method == "GET":
            return web.json_response(log.as_json())
        if path == "/_bench/pause" and request.method == "POST":
            backend = emulator.backend
            bucket = backend.default_bucket
            queue = backend.queue(bucket)
            backend.update_queue(
                bucket, queue.queue_id, queue.name, QueueState.PAUSED, NotifyConfig()
            )
            return web.json_response({"queue_id": queue.queue_id, "state": "Paused"})
        return web.json_response({"error": f"no route {request.method} {path}"}, status=404)

    async def _index(request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        found = emulator.backend.store.create(str(payload["bucket"]))
        body = found.root.parent / "tiny.png"  # seeded beside the buckets by the harness
        size, mtime = body.stat().st_size, time.time()
        etag = f'"{hashlib.md5(body.read_bytes(), usedforsecurity=False).hexdigest()}"'
        with open(payload["keys_file"], encoding="utf-8") as keys:
            for line in keys:
                key = line.rstrip("\n")
                meta = ObjectMeta(key, body, size, mtime)
                meta._etag = etag
                found._objects[key] = meta
        found._sorted = sorted(key.encode() for key in found._objects)
        return web.json_response({"bucket": found.name, "objects": len(found)})

    app = create_app(emulator)
    app.middlewares.append(record)
    return app


async def _serve(config: EmulatorConfig, host: str, port: int) -> None:
    runner = web.AppRunner(build_app(config), access_log=None, keepalive_timeout=75.0)
    await runner.setup()
    sock = socket.create_server((host, port), backlog=1024)
    await web.SockSite(runner, sock).start()
    bound = sock.getsockname()[1]
    print(json.dumps({"url": f"http://{host}:{bound}", "port": bound, "pid": os.getpid()}))
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_stop_when_orphaned(os.getppid(), stop))
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        await runner.cleanup()


async def _stop_when_orphaned(parent: int, stop: asyncio.Event) -> None:
    """Stop once the process that started us is gone, so a killed harness leaves nothing."""
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    stop.set()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--region", default="ap-guangzhou")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=None, help="CI requests/s (default: none)")
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--progression", choices=("instant", "delay"), default="instant")
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument("--queue-max-size", type=int, default=10000)
    parser.add_argument("--queue-max-concurrent", type=int, default=10)
    parser.add_argument(
        "--no-output-bytes",
        dest="write_outputs",
        action="store_false",
        help="store no output objects (see docs/emulator.md); also POST /_emulator/config",
    )
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU")
    parser.add_argument(
        "--cache-images", action="store_true", help="memoise image work (see the module doc)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    if args.cache_images:
        cache_images()
    config = config_from_env(args.data)
    config = EmulatorConfig(
        data_dir=args.data,
        default_bucket=args.bucket,
        region=args.region,
        credentials=config.credentials,
        progression=args.progression,
        job_seconds=args.job_seconds,
        queue_max_size=args.queue_max_size,
        queue_max_concurrent=args.queue_max_concurrent,
        write_outputs=args.write_outputs,
        rate=args.rate,
        burst=args.burst,
    )
    asyncio.run(_serve(config, args.host, args.port))


if __name__ == "__main__":
    main()
