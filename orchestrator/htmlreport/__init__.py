"""`picjobs report --format html`: one self-contained page per manifest, charts drawn by
matplotlib (the optional `report` extra)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Final

from orchestrator.exceptions import UsageError
from orchestrator.htmlreport.data import ReportData, collect
from orchestrator.htmlreport.shards import collect_shards
from orchestrator.ledger import Ledger
from orchestrator.manifest import Manifest
from orchestrator.shard import ShardProblem

__all__ = ["EXTRA_HINT", "render_html", "render_shards_html"]

EXTRA_HINT: Final = "pip install 'picjobs[report]'"


def render_html(ledger: Ledger, *, name: str, manifest: str) -> str:
    """The report page of `ledger`; `manifest` is the path shown in the re-run commands."""
    return _render(collect(ledger, name), manifest)


def render_shards_html(
    manifest: Manifest, count: int, *, path: str
) -> tuple[str, list[ShardProblem]]:
    """The page of the manifest's `count` shard ledgers as one, and the shard ledgers that were
    not read or were being written (also named on the page)."""
    data, problems = collect_shards(manifest, count)
    return _render(data, path), problems


def _render(data: ReportData, manifest: str) -> str:
    try:
        from orchestrator.htmlreport.page import render_page
    except ImportError as exc:
        if not (exc.name or "").startswith("matplotlib"):
            raise
        raise UsageError(f"--format html needs matplotlib: {EXTRA_HINT}") from None
    try:
        ours = version("picjobs")
    except PackageNotFoundError:
        ours = "(not installed)"
    return render_page(data, manifest=manifest, version=ours)
