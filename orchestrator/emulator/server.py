"""Running the emulator: in the caller's event loop, in a thread of its own, or forever.

async with running_emulator(EmulatorConfig(data_dir=tmp)) as emu:
    ...  # emu.url, emu.backend

with EmulatorThread(EmulatorConfig(data_dir=tmp)) as emu:   # for synchronous clients
    ...
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from aiohttp import web

from orchestrator.cloud.signing import Credentials
from orchestrator.emulator.app import CI_RATE, Emulator, Limits, create_app
from orchestrator.emulator.backend import QUEUE_MAX_SIZE, Backend, Progression, Settings
from orchestrator.emulator.callbacks import CallbackPolicy
from orchestrator.emulator.clock import SkewedClock
from orchestrator.emulator.faults import FaultConfig
from orchestrator.emulator.metadata import Issuer

__all__ = [
    "EmulatorConfig",
    "EmulatorThread",
    "RunningEmulator",
    "build_emulator",
    "config_from_env",
    "running_emulator",
    "serve_forever",
]

log = logging.getLogger(__name__)

DEFAULT_PORT = 9000
_SHUTDOWN_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """How to run the emulator. `credentials` None turns signature checks off.

    `write_outputs` False answers every job as usual but stores no output object (benchmarks).
    `rate` is CI's requests per second (None: unlimited) with bursts of `burst`; the default is
    CI's documented 100 req/s quota. `cos_rate` limits COS routes the same way (503 SlowDown).
    `seed` seeds the fault RNG when `faults.seed` is not set. `callbacks` says where job
    callbacks may go (loopback only by default) and how they are retried.
    `temporary_credentials` (seconds) issues rotating temporary credentials (metadata service, fake STS) besides `credentials`;
    `clock_skew` shifts the emulator's signing clock and `Date` headers.
    """

    data_dir: Path
    default_bucket: str | None = None
    region: str = "ap-guangzhou"
    credentials: Credentials | None = None
    progression: Progression = "instant"
    job_seconds: float = 1.0
    queue_max_size: int = QUEUE_MAX_SIZE
    queue_max_concurrent: int = 10
    write_outputs: bool = True
    rate: float | None = CI_RATE
    burst: int = 10
    cos_rate: float | None = None
    cos_burst: int = 100
    faults: FaultConfig = field(default_factory=FaultConfig)
    seed: int | None = None
    callbacks: CallbackPolicy = field(default_factory=CallbackPolicy)
    temporary_credentials: float | None = None
    clock_skew: float = 0.0


def config_from_env(
    data_dir: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> EmulatorConfig:
    """A configuration whose credentials come from COS_SECRET_ID, COS_SECRET_KEY and the
    optional COS_SECURITY_TOKEN; without an id and a key, signatures are not checked."""
    env = os.environ if environ is None else environ
    secret_id, secret_key = env.get("COS_SECRET_ID", ""), env.get("COS_SECRET_KEY", "")
    credentials = None
    if secret_id and secret_key:
        credentials = Credentials(secret_id, secret_key, env.get("COS_SECURITY_TOKEN") or None)
    return EmulatorConfig(data_dir=Path(data_dir), credentials=credentials)


def build_emulator(config: EmulatorConfig) -> Emulator:
    backend = Backend(
        Path(config.data_dir),
        default_bucket=config.default_bucket,
        region=config.region,
        settings=Settings(
            progression=config.progression,
            job_seconds=config.job_seconds,
            queue_max_size=config.queue_max_size,
            queue_max_concurrent=config.queue_max_concurrent,
            write_outputs=config.write_outputs,
        ),
    )
    faults = config.faults
    if faults.seed is None and config.seed is not None:
        faults = FaultConfig.from_json({**faults.to_json(), "seed": config.seed})
    clock = SkewedClock(config.clock_skew)
    lifetime = config.temporary_credentials
    return Emulator(
        backend,
        issuer=None if lifetime is None else Issuer(lifetime, clock.now),
        clock=clock,
        credentials=config.credentials,
        limits=Limits(config.rate, config.burst, config.cos_rate, config.cos_burst),
        faults=faults,
        callbacks=config.callbacks,
    )


@dataclass(frozen=True, slots=True)
class RunningEmulator:
    url: str
    host: str
    port: int
    emulator: Emulator

    @property
    def backend(self) -> Backend:
        return self.emulator.backend


async def _start(emulator: Emulator, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(
        create_app(emulator),
        access_log=None,
        keepalive_timeout=75.0,
        shutdown_timeout=_SHUTDOWN_SECONDS,
    )
    await runner.setup()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=1024)
    try:
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    return runner, int(sock.getsockname()[1])


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@asynccontextmanager
async def running_emulator(
    config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningEmulator]:
    """Serve in the running loop until the block ends; port 0 picks a free port."""
    emulator = build_emulator(config)
    runner, bound = await _start(emulator, host, port)
    try:
        yield RunningEmulator(_url(host, bound), host, bound, emulator)
    finally:
        await runner.cleanup()


class EmulatorThread:
    """The emulator on its own event loop in a daemon thread, for synchronous code."""

    def __init__(self, config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.host = host
        self._port = port
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._running: RunningEmulator | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        """Start serving and return once the port is open (or raise what prevented it)."""
        if self._thread is not None:
            raise RuntimeError("the emulator thread was already started")
        self._thread = threading.Thread(target=self._main, name="picjobs-emulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), not lost in the thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_emulator(self.config, self.host, self._port) as running:
            self._running = running
            self._ready.set()
            await self._stop.wait()

    @property
    def running(self) -> RunningEmulator:
        if self._running is None:
            raise RuntimeError("the emulator thread is not running")
        return self._running

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def backend(self) -> Backend:
        return self.running.backend

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join()
        self._loop = self._stop = self._thread = None
        self._running = None

    def __enter__(self) -> EmulatorThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    config: EmulatorConfig,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    ready: Callable[[RunningEmulator], None] | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C); `ready` is called once the port is open."""

    async def main() -> None:
        async with running_emulator(config, host, port) as running:
            log.info(
                "emulator listening on %s (bucket %s)", running.url, running.backend.default_bucket
            )
            if ready is not None:
                ready(running)
            await asyncio.Event().wait()

    with suppress(KeyboardInterrupt):
        asyncio.run(main())
