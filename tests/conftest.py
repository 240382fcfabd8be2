from __future__ import annotations

import logging
import types
from collections.abc import Iterator
from typing import Any

import aioresponses.core
import pytest
from aiohttp import ClientResponse


class _ClientResponse(ClientResponse):
    """aioresponses 0.7.x builds responses without the `stream_writer` that aiohttp 3.14 requires
    (pnuckowski/aioresponses#289); give it a finished writer so mocked responses construct."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", types.SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


aioresponses.core.ClientResponse = _ClientResponse  # type: ignore[misc]


SLOW_TIMEOUT = 600  # seconds: a long end-to-end run on a busy two-core machine


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `slow` get a longer timeout than the 120 s of pyproject.toml."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))


@pytest.fixture(autouse=True)
def _pristine_orchestrator_logger() -> Iterator[None]:
    """A command run in-process (here or in a wider-scoped fixture) sets up the `orchestrator`
    logger: its own handler on that command's stderr, no propagation. Each test starts and ends
    with the logger as Python made it, so caplog hears it and no handler outlives its stream."""
    logger = logging.getLogger("orchestrator")

    def reset() -> None:
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True

    reset()
    yield
    reset()
