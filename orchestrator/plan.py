"""From an object to a planned job: output-key templates, priority rules and item identity."""

from __future__ import annotations

import hashlib
import json
import posixpath
import string
from fnmatch import fnmatchcase

from orchestrator.config import Manifest
from orchestrator.exceptions import ManifestError, SourceError
from orchestrator.items import Item, ObjectRef

__all__ = ["Planner", "item_id", "key_parts", "object_key", "render_output"]


def object_key(key: str) -> str:
    """The key of the object `key` names. The object of key `k` is addressed by the path `/k`
    and COS keys never start with '/', so a '/' in front (as hand-made CSVs write keys) is
    that path's separator, not part of the key: `/photos/a.jpg` names `photos/a.jpg`."""
    return key.lstrip("/")


def key_parts(key: str) -> dict[str, str]:
    """The values of the output placeholders for `key`: key, dir, name, stem and ext (no dot)."""
    directory, _, name = key.rpartition("/")
    stem, dot_ext = posixpath.splitext(name)
    return {"key": key, "dir": directory, "name": name, "stem": stem, "ext": dot_ext[1:]}


def render_output(template: str, key: str) -> str:
    """Fill `template` for `key`. An empty {dir} drops the '/' that follows it.

    The template is assumed valid (see `config.output_template_problem`).
    """
    values = key_parts(key)
    pieces: list[str] = []
    drop_slash = False
    for literal, field, _spec, _conversion in string.Formatter().parse(template):
        if drop_slash:
            literal = literal.removeprefix("/")
        pieces.append(literal)
        drop_slash = field == "dir" and not values["dir"]
        if field is not None:
            pieces.append(values[field])
    return "".join(pieces)


def item_id(
    manifest_name: str,
    bucket: str,
    key: str,
    output_bucket: str,
    output_key: str,
    fingerprint: str,
) -> str:
    """A stable 32-hex-digit id; the JSON array keeps the fields apart whatever they contain."""
    fields = [manifest_name, bucket, key, output_bucket, output_key, fingerprint]
    encoded = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


class Planner:
    """Turns the ObjectRefs of one manifest into Items."""

    def __init__(self, manifest: Manifest) -> None:
        self._manifest = manifest
        self._job = manifest.job
        self._fingerprint = manifest.operation_fingerprint

    def job_level(self, ref: ObjectRef) -> int:
        """The row's level, else the first matching rule's, else the manifest's."""
        if ref.job_level is not None:
            return ref.job_level
        key = object_key(ref.key)
        for rule in self._job.priority:
            if fnmatchcase(key, rule.match):
                return rule.job_level
        return self._job.job_level

    def plan(self, ref: ObjectRef) -> Item:
        key = object_key(ref.key)
        where = "" if ref.line is None else f" (line {ref.line})"
        if not key:
            raise SourceError(f"source key {ref.key!r}{where} names no object")
        if ref.output_key:
            output_key = object_key(ref.output_key)
            if not output_key:
                raise SourceError(
                    f"output {ref.output_key!r} for {ref.key!r}{where} names no object"
                )
        else:
            output_key = render_output(self._job.output, key)
            if not output_key:
                raise ManifestError(
                    f"{self._manifest.path}: [job] output: {self._job.output!r} gives an empty"
                    f" object key for {ref.key!r}"
                )
        output_bucket = self._job.output_bucket
        return Item(
            item_id=item_id(
                self._manifest.name,
                ref.bucket,
                key,
                output_bucket,
                output_key,
                self._fingerprint,
            ),
            bucket=ref.bucket,
            key=key,
            output_bucket=output_bucket,
            output_region=self._job.output_region,
            output_key=output_key,
            job_level=self.job_level(ref),
            user_data=ref.user_data if ref.user_data is not None else self._job.user_data,
            etag=ref.etag,
            size=ref.size,
            last_modified=ref.last_modified,
        )
