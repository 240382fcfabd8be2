"""Reference floors for scenario 5: what an evenly paced asyncio client costs on this machine
before it does any work of its own.

    python -m benchmarks.floor --mode wake --rate 200 --count 12000
    python -m benchmarks.floor --mode http --rate 100 --count 6000 --url URL [--workers 16]

`wake`: one coroutine that sleeps until each of `count` evenly spaced slots and does nothing else.
`http`: one aiohttp session (`TCPConnector(limit=workers)`) and `workers` coroutines that share
one evenly spaced schedule; at each slot one of them POSTs a small XML body to URL and reads the
answer, whatever its status. No signing, no ledger, no parsing.

Prints one JSON line. `cpu` (user + sys, `resource.getrusage` of this process) and `wall` cover
the timed part only: not interpreter start-up, imports, or setting up and closing the session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections import Counter
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

__all__ = ["main"]

_BODY = b"<Request><Tag>floor</Tag></Request>"


async def _timed(work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    result = await work
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {"cpu": user + system, "user": user, "system": system, "wall": wall, **result}


async def _wake(rate: float, count: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(1, count + 1):
        await asyncio.sleep(start + i / rate - loop.time())
    return {}


async def _post_paced(
    session: aiohttp.ClientSession, url: str, rate: float, count: int, workers: int
) -> dict[str, Any]:
    import aiohttp  # not at the top: the wake mode does without it

    loop = asyncio.get_running_loop()
    start = loop.time()
    slots = iter(range(count))  # shared: each worker takes the next free slot
    answers: Counter[str] = Counter()

    async def worker() -> None:
        for i in slots:
            await asyncio.sleep(start + i / rate - loop.time())
            try:
                async with session.post(
                    url, data=_BODY, headers={"Content-Type": "application/xml"}
                ) as answer:
                    await answer.read()
                answers[str(answer.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                answers[type(exc).__name__] += 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return {"answers": dict(answers)}


async def _http(url: str, rate: float, count: int, workers: int) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=workers),
        timeout=aiohttp.ClientTimeout(total=10),
    ) as session:
        return await _timed(_post_paced(session, url, rate, count, workers))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__)
    parser.add_argument("--mode", choices=("wake", "http"), required=True)
    parser.add_argument("--rate", type=float, required=True, help="wake-ups or requests per second")
    parser.add_argument("--count", type=int, required=True, help="wake-ups or requests in all")
    parser.add_argument("--url", help="where to POST (http mode)")
    parser.add_argument("--workers", type=int, default=16)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.mode == "wake":
        result = asyncio.run(_timed(_wake(args.rate, args.count)))
    else:
        if not args.url:
            raise SystemExit("--mode http needs --url")
        result = asyncio.run(_http(args.url, args.rate, args.count, args.workers))
    print(json.dumps({"mode": args.mode, "rate": args.rate, "count": args.count, **result}))


if __name__ == "__main__":
    main()
