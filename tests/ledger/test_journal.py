"""The ledger's journal: WAL by default, a rollback journal when asked or on a network mount."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from orchestrator.ledger.journal import choose_journal, filesystem_type
from tests.ledger.support import items

MOUNTS = """\
/dev/vda1 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
10.0.0.7:/ /var/lib/picjobs nfs4 rw,relatime,vers=4.0 0 0
cosfs /mnt/cos fuse.cosfs rw,nosuid,nodev 0 0
//files/share /mnt/my\\040share cifs rw 0 0
tmpfs /var/lib/picjobs/scratch tmpfs rw 0 0
"""


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("/var/lib/picjobs", "nfs4"),
        ("/var/lib/picjobs/state/deeper", "nfs4"),
        ("/var/lib/picjobs/scratch", "tmpfs"),
        ("/var/lib/picjobsx", "ext4"),
        ("/mnt/cos/ledgers", "fuse.cosfs"),
        ("/mnt/my share", "cifs"),
        ("/home/me", "ext4"),
    ],
)
def test_the_filesystem_of_a_folder_is_that_of_the_longest_mount_point_above_it(
    folder: str, expected: str
) -> None:
    assert filesystem_type(Path(folder), MOUNTS) == expected


@pytest.mark.parametrize(
    ("folder", "journal"),
    [
        ("/var/lib/picjobs", "delete"),
        ("/mnt/cos", "delete"),
        ("/mnt/my share", "delete"),
        ("/var/lib/picjobs/scratch", "wal"),
        ("/home/me", "wal"),
    ],
)
def test_auto_chooses_a_rollback_journal_on_nfs_cifs_and_fuse_mounts_only(
    folder: str, journal: str
) -> None:
    assert choose_journal("auto", Path(folder) / "thumbs.sqlite", MOUNTS) == journal


def test_an_explicit_journal_wins_over_detection() -> None:
    ledger = Path("/var/lib/picjobs/thumbs.sqlite")
    assert choose_journal("wal", ledger, MOUNTS) == "wal"
    assert choose_journal("delete", Path("/home/me/t.sqlite"), MOUNTS) == "delete"


def test_a_ledger_opened_with_the_delete_journal_uses_it_and_leaves_no_wal_file(
    path: Path,
) -> None:
    with Ledger.open(path, journal="delete") as ledger:
        ledger.add_items(items(3))
        assert ledger.connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert not path.with_name(path.name + "-wal").exists()
    with Ledger.open(path, journal="delete") as ledger:
        assert ledger.total() == 3


def test_a_wal_ledger_opened_with_the_delete_journal_is_converted(path: Path) -> None:
    with Ledger.open(path) as ledger:
        ledger.add_items(items(2))
    with Ledger.open(path, journal="delete") as ledger:
        assert ledger.connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert ledger.total() == 2
