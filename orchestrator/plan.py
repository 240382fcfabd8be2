"""From an object to a planned job: output-key templates, priority rules and item identity."""

from __future__ import annotations

import hashlib
from fnmatch import fnmatchcase
from json.encoder import encode_basestring

from orchestrator.exceptions import ManifestError, SourceError
from orchestrator.items import Item, ItemRecord, ObjectRef
from orchestrator.manifest import JobConfig, Manifest
from orchestrator.manifest.outputs import compile_output, key_parts, render_output

__all__ = ["Planner", "compile_output", "item_id", "key_parts", "object_key", "render_output"]


def object_key(key: str) -> str:
    """The key of the object `key` names. The object of key `k` is addressed by the path `/k`
    and COS keys never start with '/', so a '/' in front (as hand-made CSVs write keys) is
    that path's separator, not part of the key: `/photos/a.jpg` names `photos/a.jpg`."""
    return key.lstrip("/")


# The C string encoder behind json.dumps(..., ensure_ascii=False): same bytes, a third the cost.
_quote = encode_basestring


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
    encoded = ("[" + ",".join(map(_quote, fields)) + "]").encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


class Planner:
    """Turns the ObjectRefs of one manifest into the Items of one of its jobs (the first by
    default). The ids leave the job's name out: a renamed job, or a single `[job]` that becomes
    one of several `[[job]]`, keeps its items."""

    def __init__(self, manifest: Manifest, job: JobConfig | None = None) -> None:
        self._manifest = manifest
        self._job = job = manifest.jobs[0] if job is None else job
        self._label = job.label
        # Several jobs cannot share a row's own output key.
        self._own_output = len(manifest.jobs) == 1
        self._render = compile_output(job.output)
        # item_id's JSON array, with the parts every item of this job shares quoted once.
        self._id_head = "[" + _quote(manifest.name) + ","
        self._id_middle = "," + _quote(job.output_bucket) + ","
        self._id_tail = "," + _quote(job.operation_fingerprint) + "]"
        self._last_bucket = self._quoted_bucket = ""

    def _rule_level(self, key: str) -> int:
        """The first matching rule's level, else the manifest's (a row's own level wins)."""
        for rule in self._job.priority:
            if fnmatchcase(key, rule.match):
                return rule.job_level
        return self._job.job_level

    def plan(self, ref: ObjectRef) -> Item:
        return Item(*self.record(ref))

    def record(self, ref: ObjectRef) -> ItemRecord:
        """`plan` as a plain tuple, for expansion."""
        key = object_key(ref.key)
        if not key:
            raise SourceError(f"source key {ref.key!r}{_where(ref)} names no object")
        if ref.output_key:
            if not self._own_output:
                shown = f"{self._manifest.source.csv_path}" + (
                    "" if ref.line is None else f":{ref.line}"
                )
                raise SourceError(
                    f"{shown}: output: a row's own output is valid only with a single [job];"
                    f" this manifest has {len(self._manifest.jobs)} jobs"
                )
            output_key = object_key(ref.output_key)
            if not output_key:
                raise SourceError(
                    f"output {ref.output_key!r} for {ref.key!r}{_where(ref)} names no object"
                )
        else:
            output_key = self._render(key)
            if not output_key:
                raise ManifestError(
                    f"{self._manifest.path}: [job] output: {self._job.output!r} gives an empty"
                    f" object key for {ref.key!r}"
                )
        job = self._job
        if ref.bucket != self._last_bucket:
            self._last_bucket, self._quoted_bucket = ref.bucket, _quote(ref.bucket) + ","
        identity = (
            self._id_head + self._quoted_bucket + _quote(key) + self._id_middle
            + _quote(output_key) + self._id_tail
        )  # fmt: skip
        return (
            hashlib.sha256(identity.encode()).hexdigest()[:32],  # = item_id(...), quoted once
            ref.bucket,
            key,
            job.output_bucket,
            job.output_region,
            output_key,
            ref.job_level if ref.job_level is not None else self._rule_level(key),
            ref.user_data if ref.user_data is not None else job.user_data,
            ref.etag,
            ref.size,
            ref.last_modified,
            self._label,
        )


def _where(ref: ObjectRef) -> str:
    return "" if ref.line is None else f" (line {ref.line})"
