"""The files behind objects: read whole, written whole or not at all.

A write goes to a scratch file of our own in the bucket's reserved folder and is renamed over
its path, so a reader (or a listing) never sees half an object. Folders known to exist are
remembered: on a VM every mkdir or stat is a system call that costs as much as the rest of a
small write.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

__all__ = ["Files", "read_file"]

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def read_file(path: Path, size: int) -> bytes:
    """The whole content of `path`, expected to be about `size` bytes (it may have changed).

    Plain reads of a descriptor: Path.read_bytes asks the file for its size and whether it is
    a terminal first, four system calls a job could do without."""
    fd = os.open(path, _READ)
    try:
        chunks = []
        want = size + 1
        while chunk := os.read(fd, want):
            chunks.append(chunk)
            want = max(want, 1 << 20)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


class Files:
    """Whole-file writes under one bucket folder, through its scratch folder."""

    def __init__(self, scratch: Path) -> None:
        self._scratch = scratch
        # Named by process and a counter rather than by tempfile's random names: cheaper, and
        # the exclusive create still keeps two emulators sharing a folder apart.
        self._prefix = os.path.join(scratch, f"tmp{os.getpid()}-")
        self._names = itertools.count()
        # Folders known to exist. Forgotten on a rescan, or when a write finds one gone.
        self.folders: set[Path] = set()

    def write(self, path: Path, data: bytes) -> os.stat_result:
        """Write `path` whole or not at all; return its stat."""
        try:
            return self._write_replacing(path, data)
        except FileNotFoundError:  # a folder removed by hand since we made it
            self.folders.clear()
            return self._write_replacing(path, data)

    def _write_replacing(self, path: Path, data: bytes) -> os.stat_result:
        for folder in (path.parent, self._scratch):
            if folder not in self.folders:
                folder.mkdir(parents=True, exist_ok=True)
                self.folders.add(folder)
        fd, tmp = self._scratch_file()
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                stat = os.fstat(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return stat

    def _scratch_file(self) -> tuple[int, str]:
        """A new file of our own in the scratch folder, opened for writing (mode 0600, as
        mkstemp makes it)."""
        while True:
            name = f"{self._prefix}{next(self._names)}"
            try:
                return os.open(name, _CREATE, 0o600), name
            except FileExistsError:
                continue
