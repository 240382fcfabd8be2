"""The files behind objects: read whole, written whole or not at all.

A write goes to a scratch file of our own and is renamed over its path, so a reader (or a
listing) never sees half an object. Folders known to exist are remembered: on a VM every mkdir
or stat is a system call that costs as much as the rest of a small write.

Where the scratch folder lies on the disk matters more than anything else a write does. ext4
without a journal (the machines this project is tested on) gives a new file an inode in the
first block group of its folder's flex group and passes over every inode there freed in the
last minutes, one look-up each. Beside a test's or a benchmark's folder, where test suites and
the previous run delete thousands of files, creating 1,000 small files cost 0.75-1.06 s of
system time; in a quiet group, 0.05-0.07 s. So each Files makes a scratch folder of its own,
under a unique name, in the bucket's reserved folder marked as a top of a tree (`chattr +T`,
best effort): ext4 then places it by a hash of its name, in a group of its own. Empty scratch
folders of processes that have ended are removed.
"""

from __future__ import annotations

import array
import contextlib
import itertools
import os
import secrets
import sys
from pathlib import Path

__all__ = ["Files", "read_file"]

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
# linux/fs.h: the inode flags ioctls (the kernel passes an int) and the top-of-tree flag.
_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_TOPDIR_FL = 0x00020000


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
    """Whole-file writes through a scratch folder of our own in `reserved`."""

    def __init__(self, reserved: Path) -> None:
        self._reserved = reserved
        self._scratch = reserved / f"tmp-{os.getpid()}-{secrets.token_hex(4)}"
        # Named by a counter rather than by tempfile's random names: cheaper, and the folder
        # is ours alone (the exclusive create still guards against the rare collision).
        self._prefix = os.path.join(self._scratch, "t")
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
        if self._scratch not in self.folders:
            self._make_scratch()
        if path.parent not in self.folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.folders.add(path.parent)
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

    def _make_scratch(self) -> None:
        self._reserved.mkdir(parents=True, exist_ok=True)
        _mark_top_of_tree(self._reserved)
        for old in self._reserved.glob("tmp*"):
            if old != self._scratch and _abandoned(old.name):
                with contextlib.suppress(OSError):  # not empty: kept
                    old.rmdir()
        self._scratch.mkdir(exist_ok=True)
        self.folders.add(self._scratch)

    def _scratch_file(self) -> tuple[int, str]:
        """A new file in the scratch folder, opened for writing (mode 0600, as mkstemp makes
        it)."""
        while True:
            name = f"{self._prefix}{next(self._names)}"
            try:
                return os.open(name, _CREATE, 0o600), name
            except FileExistsError:
                continue


def _abandoned(name: str) -> bool:
    """Whether a scratch folder is no live emulator's: made by this process (for a bucket it
    has rescanned since) or by one that has ended. Another's stays, lest a write of theirs find
    its folder gone."""
    _, _, rest = name.partition("-")
    pid_text = rest.partition("-")[0]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill(pid, 0) would send it CTRL_C_EVENT
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's
        return False
    return False


def _mark_top_of_tree(folder: Path) -> None:
    """Set ext4's top-of-tree flag on `folder` if the filesystem has one (see the module doc)."""
    if sys.platform != "linux":
        return
    import fcntl

    try:
        fd = os.open(folder, _READ | os.O_DIRECTORY)
    except OSError:
        return
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        if not flags[0] & _FS_TOPDIR_FL:
            flags[0] |= _FS_TOPDIR_FL
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, True)
    except OSError:  # tmpfs, overlayfs and others have no such flag
        pass
    finally:
        os.close(fd)
