"""[limits] and ledger_sync: ranges, edges and defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.exceptions import ManifestError
from orchestrator.manifest import Limits, load_manifest
from tests.manifest.support import BASE, error_of, load


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("rate = 0", "rate: must be greater than 0, got 0"),
        ("rate = -2.5", "rate: must be greater than 0, got -2.5"),
        ("concurrency = 0", "concurrency: must be at least 1, got 0"),
        ("max_attempts = 0", "max_attempts: must be at least 1, got 0"),
        ("min_finished = -1", "min_finished: must be at least 0, got -1"),
        (
            "max_failure_percent = 100.5",
            "max_failure_percent: must be between 0 and 100, got 100.5",
        ),
        ("max_failure_percent = -1", "max_failure_percent: must be between 0 and 100, got -1"),
        ("max_consecutive_same_error = 0", "max_consecutive_same_error: must be at least 1, got 0"),
    ],
)
def test_limits_out_of_range_are_rejected(line: str, problem: str) -> None:
    assert error_of(BASE + f"\n[limits]\n{line}\n") == f"thumbs.toml:15: [limits] {problem}"


def test_limits_at_the_edges_of_their_ranges_are_accepted() -> None:
    text = BASE + (
        "\n[limits]\nrate = 0.5\nconcurrency = 1\nmax_attempts = 1\nmin_finished = 0\n"
        "max_failure_percent = 0\nmax_consecutive_same_error = 1\n"
    )
    assert load(text).limits == Limits(0.5, 1, 1, 0, 0.0, 1)


def test_limits_not_given_keep_their_defaults() -> None:
    assert load(BASE + "\n[limits]\nrate = 50\n").limits == Limits(rate=50.0)


def test_ledger_sync_defaults_to_normal_and_accepts_full(tmp_path: Path) -> None:
    base = (
        'name = "n"\n[target]\nbucket = "b-1250000000"\nregion = "ap-guangzhou"\n'
        '[source]\nprefix = "p/"\n[job]\nprocess_rule = "imageMogr2/rotate/90"\noutput = "o/{key}"\n'
    )
    plain = tmp_path / "plain.toml"
    plain.write_text(base)
    assert load_manifest(plain).ledger_sync == "NORMAL"
    full = tmp_path / "full.toml"
    full.write_text('ledger_sync = "full"\n' + base)
    assert load_manifest(full).ledger_sync == "FULL"
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('ledger_sync = "off"\n' + base)
    with pytest.raises(ManifestError, match="ledger_sync"):
        load_manifest(wrong)
