"""Buckets as folders: `DATA_DIR/<BucketName-APPID>/<key>`, with a sorted in-memory index.

A key is stored at the file of the same relative path when objects.natural_parts allows it and
no file or folder of another key is in the way (keys `a` and `a/b` cannot both be files). Every
other key is stored in the reserved folder `.picjobs-emulator` under the SHA-256 of the key,
beside a `.key` file holding the exact key, so it is still listed and readable under that key.

The folder is the truth; the index only makes listing fast. A read or HEAD looks at the file itself
(one stat), so a file added, changed or removed by hand is seen at once. A listing first checks the
modification time of the folders its page can come from and reads again only those that changed,
so it sees added and removed files at a cost that does not grow with the number of objects.
Which folders changed is folders.py's business; writing files whole is files.py's.

The index keeps keys sorted by their UTF-8 bytes, the order COS lists in.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from orchestrator.emulator.files import Files, read_file
from orchestrator.emulator.folders import Changes, FolderTree
from orchestrator.emulator.objects import (
    RESERVED_DIR,
    Listing,
    ObjectMeta,
    check_key,
    cos_time,
    etag_of,
    natural_parts,
    valid_bucket_name,
)

__all__ = [
    "RESERVED_DIR",
    "Bucket",
    "Listing",
    "ObjectMeta",
    "Store",
    "check_key",
    "cos_time",
    "valid_bucket_name",
]

_APPID = re.compile(r"-(\d+)$")
# Above every byte that occurs in UTF-8, so `prefix + _HIGH` sorts after every key with `prefix`.
_HIGH = b"\xff"
# Index changes up to this many keys are inserted one by one, more are merged by a sort.
_FEW = 64


class Bucket:
    """One bucket folder and its index."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        match = _APPID.search(name)
        self.appid = match.group(1) if match else "1250000000"
        self._sorted: list[bytes] = []
        self._objects: dict[str, ObjectMeta] = {}
        self._files = Files(root / RESERVED_DIR)
        self.scan()

    # ------------------------------------------------------------------ index

    def scan(self) -> None:
        """Rebuild the index from the folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._files.folders.clear()
        self._objects = {}
        self._sorted = []
        self._tree = FolderTree(self.root, RESERVED_DIR)
        touched = self._apply(self._tree.read([""]))
        for key, path in self._fallback_files():
            stat_result = path.stat()
            self._objects[key] = ObjectMeta(key, path, stat_result.st_size, stat_result.st_mtime)
            touched.add(key.encode())
        self._reindex(touched)

    def _fallback_files(self) -> Iterator[tuple[str, Path]]:
        folder = self.root / RESERVED_DIR / "objects"
        if not folder.is_dir():
            return
        for key_file in folder.glob("*.key"):
            data_file = key_file.with_suffix("")
            if data_file.is_file():
                yield key_file.read_text(encoding="utf-8"), data_file

    def refresh(self, low: bytes = b"", high: bytes = _HIGH) -> bool:
        """Read again the folders that changed and can hold keys from `low` to `high`; whether
        the index changed."""
        touched = self._apply(self._tree.read(self._tree.around(low, high)))
        self._reindex(touched)
        return bool(touched)

    def _apply(self, changes: Changes) -> set[bytes]:
        """Bring the index in line with what changed on disk; the keys it changed."""
        touched: set[bytes] = set()
        for prefix in changes.dropped:
            encoded = prefix.encode()
            low = bisect.bisect_left(self._sorted, encoded)
            high = bisect.bisect_left(self._sorted, encoded + _HIGH)
            for key_b in self._sorted[low:high]:
                self._drop_natural(key_b.decode(), touched)
        for key in changes.removed:
            self._drop_natural(key, touched)
        for key in changes.added:
            self._adopt(key, touched)
        return touched

    def _drop_natural(self, key: str, touched: set[bytes]) -> None:
        """Forget `key` if it was stored at its own path (gone now), not in the reserved folder."""
        meta = self._objects.get(key)
        if meta is not None and meta.path == self.root / key:
            del self._objects[key]
            touched.add(key.encode())

    def _adopt(self, key: str, touched: set[bytes]) -> ObjectMeta | None:
        """Index the file at `key`'s own path if there is one, for a key not in the index."""
        if key in self._objects:
            return self._objects[key]
        parts = natural_parts(key)
        if parts is None:
            return None
        path = self.root.joinpath(*parts)
        try:
            found = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(found.st_mode):
            return None
        meta = self._objects[key] = ObjectMeta(key, path, found.st_size, found.st_mtime)
        touched.add(key.encode())
        return meta

    def _reindex(self, touched: set[bytes]) -> None:
        """Make the sorted keys agree with the index for the keys in `touched`."""
        if len(touched) > _FEW:
            kept = [key for key in self._sorted if key not in touched]
            kept.extend(key for key in touched if key.decode() in self._objects)
            kept.sort()
            self._sorted = kept
            return
        for key_b in touched:
            index = bisect.bisect_left(self._sorted, key_b)
            listed = index < len(self._sorted) and self._sorted[index] == key_b
            present = key_b.decode() in self._objects
            if listed and not present:
                del self._sorted[index]
            elif present and not listed:
                self._sorted.insert(index, key_b)

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def get(self, key: str) -> ObjectMeta | None:
        """The object as its file is now: one stat, so changes made by hand are seen."""
        meta = self._objects.get(key)
        touched: set[bytes] = set()
        if meta is not None:
            try:
                found = meta.path.stat()
            except OSError:
                found = None
            if found is not None and stat.S_ISREG(found.st_mode):
                if found.st_size != meta.size or found.st_mtime != meta.mtime:
                    meta = ObjectMeta(key, meta.path, found.st_size, found.st_mtime)
                    self._objects[key] = meta
                return meta
            self._forget(key)
        meta = self._adopt(key, touched)
        if meta is not None:
            self._tree.track(key)
            self._reindex(touched)
        return meta

    def all_keys(self) -> list[str]:
        return [key.decode() for key in self._sorted]

    # ------------------------------------------------------------------ data

    def read(self, key: str) -> bytes | None:
        found = self.fetch(key)
        return found[1] if found is not None else None

    def fetch(self, key: str) -> tuple[ObjectMeta, bytes] | None:
        """The object as it is now and its content, or None."""
        meta = self.get(key)
        if meta is None:
            return None
        try:
            data = read_file(meta.path, meta.size)
        except OSError:  # removed by hand since the stat
            self._forget(key)
            return None
        meta.remember_content(data)
        return meta, data

    def write(self, key: str, data: bytes) -> ObjectMeta:
        check_key(key)
        meta = self._objects.get(key)
        path = meta.path if meta is not None else self._place(key)
        written = self._files.write(path, data)
        new = ObjectMeta(key, path, written.st_size, written.st_mtime, etag_of(data))
        if meta is None:
            bisect.insort(self._sorted, key.encode())
            if path == self.root / key:
                self._tree.track(key)
        self._objects[key] = new
        return new

    def _place(self, key: str) -> Path:
        parts = natural_parts(key)
        if parts is not None:
            path = self.root.joinpath(*parts)
            if self._free(path):
                return path
        digest = hashlib.sha256(key.encode()).hexdigest()
        folder = self.root / RESERVED_DIR / "objects"
        folder.mkdir(parents=True, exist_ok=True)
        self._files.write(folder / f"{digest}.key", key.encode())
        return folder / digest

    def _free(self, path: Path) -> bool:
        """Whether a file can be created at `path` without displacing another object."""
        if path.exists():
            return False
        parent = path.parent
        while parent != self.root and parent not in self._files.folders:
            if parent.exists() and not parent.is_dir():
                return False
            parent = parent.parent
        return True

    def _forget(self, key: str) -> None:
        if self._objects.pop(key, None) is not None:
            encoded = key.encode()
            index = bisect.bisect_left(self._sorted, encoded)
            if index < len(self._sorted) and self._sorted[index] == encoded:
                del self._sorted[index]

    # ------------------------------------------------------------------ listing

    def list(self, prefix: str, delimiter: str, marker: str, max_keys: int) -> Listing:
        """List Objects v1: keys after `marker` under `prefix`, rolled up at `delimiter`.

        The folders the page can come from are checked first; when that changed the index the
        page is made again, since it may now end elsewhere.
        """
        if max_keys <= 0:
            return Listing([], [], False, "")
        low = max(prefix.encode(), marker.encode())
        for _ in range(3):
            listing = self._page(prefix, delimiter, marker, max_keys)
            end = listing.next_marker if listing.truncated else prefix
            if not self.refresh(low, end.encode() + _HIGH):
                return listing
        return self._page(prefix, delimiter, marker, max_keys)

    def _page(self, prefix: str, delimiter: str, marker: str, max_keys: int) -> Listing:
        contents: list[ObjectMeta] = []
        prefixes: list[str] = []
        sorted_keys = self._sorted
        prefix_b, delimiter_b, marker_b = prefix.encode(), delimiter.encode(), marker.encode()
        index = bisect.bisect_left(sorted_keys, prefix_b)
        if marker:
            index = max(index, bisect.bisect_right(sorted_keys, marker_b))
        last = ""
        while index < len(sorted_keys):
            key_b = sorted_keys[index]
            if not key_b.startswith(prefix_b):
                break
            rolled = -1
            if delimiter_b:
                rolled = key_b.find(delimiter_b, len(prefix_b))
            if rolled >= 0:
                common = key_b[: rolled + len(delimiter_b)]
                index = bisect.bisect_left(sorted_keys, common + _HIGH, index)
                if marker and common <= marker_b:
                    continue  # reported on an earlier page
                if len(contents) + len(prefixes) == max_keys:
                    return Listing(contents, prefixes, True, last)
                last = common.decode()
                prefixes.append(last)
                continue
            if len(contents) + len(prefixes) == max_keys:
                return Listing(contents, prefixes, True, last)
            last = key_b.decode()
            contents.append(self._objects[last])
            index += 1
        return Listing(contents, prefixes, False, "")


class Store:
    """Every bucket folder under `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._buckets: dict[str, Bucket] = {}
        self.rescan()

    def rescan(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._buckets = {
            entry.name: Bucket(entry.name, entry)
            for entry in sorted(self.data_dir.iterdir())
            if entry.is_dir() and valid_bucket_name(entry.name)
        }

    def names(self) -> list[str]:
        return sorted(self._buckets)

    def bucket(self, name: str) -> Bucket | None:
        """The bucket, loading a folder created since the last scan."""
        found = self._buckets.get(name)
        if found is None and valid_bucket_name(name) and (self.data_dir / name).is_dir():
            found = self._buckets[name] = Bucket(name, self.data_dir / name)
        return found

    def create(self, name: str) -> Bucket:
        found = self.bucket(name)
        if found is None:
            if not valid_bucket_name(name):
                raise ValueError(f"not a valid bucket name: {name!r}")
            found = self._buckets[name] = Bucket(name, self.data_dir / name)
        return found
