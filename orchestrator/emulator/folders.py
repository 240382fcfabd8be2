"""What each folder of a bucket held when it was last read, to tell what changed on disk since.

A folder is read again (one `scandir`) only when its modification time changed: adding,
removing or renaming an entry changes it, so the cost of a check is one `stat` per folder, not
per file. A folder changed just before it was read is read again at the next check (see
`_RACY_NS`), since a file added within the same tick of the file system's clock would not change
the folder's time. Folder prefixes are keys' prefixes: `''` for the bucket folder, `a/b/` below.
"""

from __future__ import annotations

import bisect
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Changes", "FolderTree"]

# Folders changed this recently when read are read again. Times in whole seconds mean a file
# system that keeps no fractions (FAT keeps two).
_RACY_NS = 50_000_000
_RACY_WHOLE_SECONDS_NS = 2_000_000_000
_HIGH = b"\xff"


@dataclass(slots=True)
class _Folder:
    mtime_ns: int | None = None  # None: read it again at the next check
    files: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Changes:
    """What a check found: keys of files that appeared or went, and folders that went (with
    everything below them)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


class FolderTree:
    """The folders of one bucket folder, `root`; `skip` is a name ignored at the top."""

    def __init__(self, root: Path, skip: str) -> None:
        self.root = root
        self.skip = skip
        self._folders: dict[str, _Folder] = {}
        self._sorted: list[bytes] = []  # folder prefixes, UTF-8

    def around(self, low: bytes, high: bytes) -> list[str]:
        """The folders that can hold keys from `low` to `high`: those on the way to `low` and
        those inside the range. The bucket folder always: it may have been made again."""
        prefixes = {""}
        for index, byte in enumerate(low):
            if byte == ord("/"):
                prefix = low[: index + 1].decode(errors="replace")
                if prefix in self._folders:
                    prefixes.add(prefix)
        start = bisect.bisect_left(self._sorted, low)
        stop = bisect.bisect_right(self._sorted, high)
        prefixes.update(prefix.decode() for prefix in self._sorted[start:stop])
        return sorted(prefixes)

    def read(self, prefixes: Iterable[str]) -> Changes:
        """Read again those of the folders at `prefixes` whose time changed, and every folder
        found new in them; what changed."""
        changes = Changes()
        stack = list(prefixes)
        while stack:
            prefix = stack.pop()
            path = self.root / prefix
            try:
                found = os.stat(path)
            except OSError:  # removed, or a file now
                found = None
            if found is None or not stat.S_ISDIR(found.st_mode):
                self._drop(prefix, changes)
                continue
            mtime = found.st_mtime_ns
            folder = self._folders.get(prefix)
            if folder is not None and folder.mtime_ns == mtime:
                continue
            if folder is None:
                folder = self._add(prefix)
            racy = time.time_ns() - mtime < (
                _RACY_WHOLE_SECONDS_NS if mtime % 1_000_000_000 == 0 else _RACY_NS
            )
            files, folders = self._entries(path, top=not prefix)
            changes.added.extend(prefix + name for name in files - folder.files)
            changes.removed.extend(prefix + name for name in folder.files - files)
            for name in folder.folders - folders:
                self._drop(f"{prefix}{name}/", changes)
            stack.extend(f"{prefix}{name}/" for name in folders - folder.folders)
            folder.files, folder.folders = files, folders
            folder.mtime_ns = None if racy else mtime
        return changes

    def track(self, key: str) -> None:
        """Note a file indexed without reading its folder (written by the emulator, or found by
        a HEAD or GET), so that its removal is noticed when the folder is read again."""
        *names, name = key.split("/")
        prefix = ""
        for child in names:
            (self._folders.get(prefix) or self._add(prefix)).folders.add(child)
            prefix = f"{prefix}{child}/"
        (self._folders.get(prefix) or self._add(prefix)).files.add(name)

    def _add(self, prefix: str) -> _Folder:
        folder = self._folders[prefix] = _Folder()  # not read yet: read at the next check
        bisect.insort(self._sorted, prefix.encode())
        return folder

    def _drop(self, prefix: str, changes: Changes) -> None:
        encoded = prefix.encode()
        low = bisect.bisect_left(self._sorted, encoded)
        high = bisect.bisect_left(self._sorted, encoded + _HIGH)
        for gone in self._sorted[low:high]:
            self._folders.pop(gone.decode(), None)
        del self._sorted[low:high]
        changes.dropped.append(prefix)

    def _entries(self, path: Path, *, top: bool) -> tuple[set[str], set[str]]:
        """The names of the files and of the folders in the folder at `path`."""
        files: set[str] = set()
        folders: set[str] = set()
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    name = entry.name
                    try:
                        name.encode()
                    except UnicodeEncodeError:  # a name that is not UTF-8: not a key
                        continue
                    if top and name == self.skip:
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            folders.add(name)
                        elif entry.is_file():
                            files.add(name)
                    except OSError:
                        continue
        except OSError:  # removed while being read: the next check drops it
            pass
        return files, folders
