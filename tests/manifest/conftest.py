"""Manifest tests load `thumbs.toml` by a relative path, as a user types it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages name the file as given, so load `thumbs.toml` from its own directory."""
    monkeypatch.chdir(tmp_path)
