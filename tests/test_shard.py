"""Shards: the documented hash, `--shard K/N`, shard ledger paths, fleet limits divided by N,
and the refusal to mix shard counts."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.exceptions import UsageError
from orchestrator.items import ObjectRef
from orchestrator.manifest import load_manifest
from orchestrator.shard import (
    Shard,
    check_shard_count,
    existing_shard_counts,
    parse_shard,
    shard_ledger_path,
    shard_of,
    sharded,
)

DEMO = Path(__file__).parent.parent / "manifests" / "demo.toml"


def test_the_shard_is_the_first_8_bytes_of_sha256_of_bucket_slash_key_big_endian_mod_n() -> None:
    # sha256("examplebucket-1250000000/photos/a.jpg") starts 66c42e3f30fb4a3d.
    assert shard_of("examplebucket-1250000000", "photos/a.jpg", 8) == 0x66C42E3F30FB4A3D % 8 == 5
    assert shard_of("examplebucket-1250000000", "photos/a.jpg", 1000) == 0x66C42E3F30FB4A3D % 1000


def test_every_object_belongs_to_exactly_one_shard_and_the_shards_are_balanced() -> None:
    refs = [ObjectRef("b-1250000000", f"photos/{i:05d}.jpg") for i in range(8000)]
    keepers = [Shard(k, 8).keeper() for k in range(8)]
    owners = [[k for k, keep in enumerate(keepers) if keep(ref)] for ref in refs]
    assert all(len(found) == 1 for found in owners)
    assert [found[0] for found in owners] == [shard_of(r.bucket, r.key, 8) for r in refs]
    sizes = Counter(found[0] for found in owners)
    assert min(sizes.values()) > 800 and max(sizes.values()) < 1200


@pytest.mark.parametrize(
    ("text", "shard"),
    [("3/8", Shard(3, 8)), (" 0 / 1 ", Shard(0, 1)), ("1023/1024", Shard(1023, 1024))],
)
def test_a_shard_is_given_as_k_slash_n_as_kubernetes_expands_it(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("8/8", "index must be 0 to 7 for 8 shards, got 8"),
        ("-1/8", "index must be 0 to 7"),
        ("0/0", "count must be 1 to 1024, got 0"),
        ("0/1025", "count must be 1 to 1024, got 1025"),
        ("$(JOB_COMPLETION_INDEX)/8", "expected K/N such as 3/8"),
        ("3", "expected K/N"),
    ],
)
def test_a_bad_shard_is_a_usage_error(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=re.escape(problem)):
        parse_shard(text)


def test_a_shard_ledger_has_shard_k_of_n_before_its_suffix() -> None:
    path = Path("state/thumbs.sqlite")
    assert shard_ledger_path(path, 3, 8) == Path("state/thumbs.shard-3-of-8.sqlite")
    assert Shard(0, 2).ledger_path(Path("x/ledger")) == Path("x/ledger.shard-0-of-2")


def test_rate_concurrency_and_queue_room_are_fleet_totals_divided_among_the_shards(
    tmp_path: Path,
) -> None:
    manifest = load_manifest(shutil.copy(DEMO, tmp_path / "demo.toml"))
    mine = sharded(manifest, Shard(2, 3))
    assert mine.limits.rate == pytest.approx(100 / 3)
    assert mine.limits.concurrency == 3  # ceil(8 / 3)
    assert mine.ledger_path == tmp_path / ".picjobs" / "demo.shard-2-of-3.sqlite"
    assert mine.shard == Shard(2, 3)
    assert Shard(0, 8).queue_share(9000) == 1125
    assert Shard(0, 1024).queue_share(100) == 1


def test_shard_ledgers_of_another_count_are_refused_naming_the_count_in_use(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "thumbs.sqlite"
    for name in ("thumbs.shard-0-of-4.sqlite", "thumbs.shard-1-of-4.sqlite",
                 "thumbs.shard-1-of-4.sqlite-wal", "thumbs.shard-1-of-4.sqlite.lock",
                 "other.shard-0-of-2.sqlite"):  # fmt: skip
        (tmp_path / name).touch()
    assert sorted(existing_shard_counts(ledger)) == [4]
    check_shard_count(ledger, Shard(3, 4))
    with pytest.raises(UsageError) as raised:
        check_shard_count(ledger, Shard(0, 8))
    message = str(raised.value)
    assert "\n" not in message
    assert "2 shard ledgers of this manifest use 4 shards, not 8" in message
    assert "--shard K/4" in message
    assert "thumbs.shard-*-of-4.sqlite" in message


def test_limits_ledger_journal_is_read_and_checked(tmp_path: Path) -> None:
    manifest = shutil.copy(DEMO, tmp_path / "demo.toml")
    assert load_manifest(manifest).limits.ledger_journal == "auto"
    manifest.write_text(manifest.read_text() + 'ledger_journal = "delete"\n')
    assert load_manifest(manifest).limits.ledger_journal == "delete"
    manifest.write_text(manifest.read_text().replace('"delete"', '"truncate"'))
    result = CliRunner().invoke(cli, ["run", str(manifest)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "ledger_journal" in result.output and "'auto', 'wal' or 'delete'" in result.output


@pytest.mark.parametrize("shard", ["4/4", "0/0", "2/1025", "x/4"])
def test_run_with_a_shard_out_of_range_exits_2_with_one_line(tmp_path: Path, shard: str) -> None:
    manifest = shutil.copy(DEMO, tmp_path / "demo.toml")
    result = CliRunner().invoke(cli, ["run", "--shard", shard, str(manifest)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"picjobs: error: --shard {shard}") or "expected K/N" in (
        result.output
    )
    assert not (tmp_path / ".picjobs").exists()


def test_the_dry_runs_of_all_shards_together_plan_every_object_once(tmp_path: Path) -> None:
    manifest = shutil.copy(DEMO, tmp_path / "demo.toml")
    matched = []
    for k in range(3):
        result = CliRunner().invoke(cli, ["run", "--dry-run", "--shard", f"{k}/3", str(manifest)])
        assert result.exit_code == 0, result.output
        seen, match = re.findall(r"(\d+) objects, (\d+) match", result.output)[0]
        assert seen == "9"  # every shard reads the whole source
        assert f"at {100 / 3:g} requests/s" in result.output
        matched.append(int(match))
    assert sum(matched) == 8
