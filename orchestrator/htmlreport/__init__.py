"""`picjobs report --format html`: one self-contained page per manifest, charts drawn by
matplotlib (the optional `report` extra)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Final

from orchestrator.exceptions import UsageError
from orchestrator.htmlreport.data import collect
from orchestrator.ledger import Ledger

__all__ = ["EXTRA_HINT", "render_html"]

EXTRA_HINT: Final = "pip install 'picjobs[report]'"


def render_html(ledger: Ledger, *, name: str, manifest: str) -> str:
    """The report page of `ledger`; `manifest` is the path shown in the re-run commands."""
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
    return render_page(collect(ledger, name), manifest=manifest, version=ours)
