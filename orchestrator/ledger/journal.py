"""Which SQLite journal a ledger uses: WAL, or a rollback journal on a network filesystem.

WAL keeps its index in shared memory (`-shm`, mmapped), which processes on two machines cannot
share: over NFS, CIFS, CephFS or a FUSE filesystem (JuiceFS, ...) a reader on another
node can see a torn ledger. A rollback journal ("delete") needs only the byte-range locks such
filesystems do support.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

__all__ = ["NETWORK_FILESYSTEMS", "Journal", "choose_journal", "filesystem_type", "is_network"]

Journal = Literal["auto", "wal", "delete"]
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "9p", "afs"}
)
MOUNTS = Path("/proc/self/mounts")


def _unescape(field: str) -> str:
    # /proc/self/mounts writes space, tab, newline and backslash as octal escapes.
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def filesystem_type(path: Path, mounts: str | None = None) -> str | None:
    """The type of the filesystem holding `path` (the longest mount point above it)."""
    if mounts is None:
        try:
            mounts = MOUNTS.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = os.path.realpath(path)
    best, best_type = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, fields[2]
    return best_type


def is_network(fstype: str | None) -> bool:
    return fstype is not None and (fstype in NETWORK_FILESYSTEMS or fstype.startswith("fuse."))


def choose_journal(journal: Journal, ledger_path: Path, mounts: str | None = None) -> str:
    """The journal_mode to set: `auto` is WAL unless the ledger's folder is a network mount."""
    if journal != "auto":
        return journal
    return "delete" if is_network(filesystem_type(ledger_path.parent, mounts)) else "wal"
