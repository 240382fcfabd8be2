"""Fuzz the answer parser (`orchestrator.cloud.wire`) and the manifest loader for a bounded time.

    python benchmarks/fuzz.py                         # both targets, 60 s each
    python benchmarks/fuzz.py --target wire --seconds 300 --seed 7
    python benchmarks/fuzz.py --target manifest --seconds 30 --findings /tmp/fuzz

A mutational fuzzer in plain Python: it starts from valid seeds (CI and COS answers of every
shape the client reads; the demo manifest, every manifest under `tests/data/bad/` and a full
one), mutates them at the byte level (flips, cuts, splices, repeated chunks, tokens from an XML
or TOML dictionary) and, for manifests, at the level of the parsed document (values of the
wrong type, keys removed, misspelt or added), and checks what the code promises:

* wire: every `parse_*` either returns or raises `ResponseError`; `parse_error` always returns
  a `ServiceError`; every message is one line of bounded length.
* manifest: `load_manifest` either returns a `Manifest` or raises `ManifestError` whose message
  is one line starting with the path it was given.
* both: no input takes longer than `--max-ms` (default 1000 ms), and the process stays under
  `--memory-mb` (default 2048) of address space.

Each finding is written to `--findings` (default `$TMPDIR/picjobs-fuzz-findings/`) as the input plus
a `.txt` with the traceback; the run exits 1 if there were any, else 0. The same `--seed` gives
the same inputs. This is not part of the test suite: run it by hand, or on a schedule.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import hashlib
import random
import resource
import sys
import tempfile
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.cloud import wire  # noqa: E402
from orchestrator.cloud.keypage import parse_key_page  # noqa: E402
from orchestrator.exceptions import ManifestError, ResponseError, ServiceError  # noqa: E402
from orchestrator.manifest import load_manifest  # noqa: E402

MAX_MESSAGE = 2000  # characters: an error line longer than this is a finding

# -- seeds --

WIRE_SEEDS = [
    b"""<Response><JobsDetail><Code>Success</Code><Message/><JobId>c93984788066911ed89ed352d4d9d2084</JobId>
  <State>Success</State><CreationTime>2022-07-18T15:16:43+0800</CreationTime><StartTime>-</StartTime>
  <EndTime>2022-07-18T15:16:45+0800</EndTime><QueueId>p8366c460c67b4c65a9bf81b41eaa3c4b</QueueId>
  <Tag>PicProcess</Tag><Input><BucketId>test-1234567890</BucketId><Object>input/deer.jpg</Object>
  <Region>ap-chongqing</Region></Input><Operation><Output><Bucket>test-1234567890</Bucket>
  <Object>out/deer.webp</Object><Region>ap-chongqing</Region></Output><PicProcessResult>
  <ObjectName>out/deer.webp</ObjectName><OriginalInfo><Etag>"d5a4"</Etag><ImageInfo><Ave>0xc64847</Ave>
  <Format>JPEG</Format><Height>417</Height><Orientation>0</Orientation><Quality>68</Quality>
  <Width>500</Width></ImageInfo></OriginalInfo><ProcessResult><Etag/><Format>WEBP</Format>
  <Height>500</Height><Quality>68</Quality><Size>24911</Size><Width>417</Width></ProcessResult>
  </PicProcessResult><JobLevel>2</JobLevel><UserData>u1</UserData></Operation></JobsDetail></Response>""",
    b"""<Response><JobsDetail><JobId>c1</JobId><State>Success</State>
  <Input><Bucket>b-1</Bucket><Object>a.jpg</Object></Input><Operation><PicProcessResult><UploadResult>
  <OriginalInfo><Key>a.jpg</Key><ETag>"e1"</ETag><ImageInfo><Format>PNG</Format><Width>10</Width>
  <Height>20</Height></ImageInfo></OriginalInfo><ProcessResults><Object><Key>o.webp</Key>
  <Format>webp</Format><Width>5</Width><Height>10</Height><Size>99</Size><ETag>"e2"</ETag></Object>
  </ProcessResults></UploadResult></PicProcessResult></Operation></JobsDetail>
  <NonExistJobIds>c2,c3</NonExistJobIds><NextToken>225508</NextToken></Response>""",
    b"""<?xml version="1.0" encoding="UTF-8"?><Response><RequestId>r</RequestId><TotalCount>1</TotalCount>
  <QueueList><QueueId>p1</QueueId><Name>q</Name><State>Active</State><MaxSize>10000</MaxSize>
  <MaxConcurrent>10</MaxConcurrent><NotifyConfig><State>Off</State><Url/></NotifyConfig>
  <Category>CateAll</Category><CreateTime>2022-01-01T00:00:00+0800</CreateTime></QueueList>
  <NonExistPIDs>A</NonExistPIDs><Queue><QueueId>p2</QueueId></Queue></Response>""",
    b"""<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b-1250000000</Name>
  <EncodingType>url</EncodingType><Prefix>photos%2F</Prefix><Marker/><MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated><NextMarker>photos%2Fb.jpg</NextMarker><Contents>
  <Key>photos%2F%E7%8C%AB.jpg</Key><LastModified>2024-05-01T10:00:00.000Z</LastModified>
  <ETag>"5d41402abc4b2a76b9719d911017c592"</ETag><Size>1024</Size><StorageClass>STANDARD</StorageClass>
  </Contents><CommonPrefixes><Prefix>photos%2Fvip%2F</Prefix></CommonPrefixes></ListBucketResult>""",
    b"""<?xml version='1.0' encoding='UTF-8'?>
<ListBucketResult><Name>out-1250000000</Name><EncodingType>url</EncodingType><Prefix>t%2F</Prefix>\
<IsTruncated>false</IsTruncated><Contents><Key>t%2Fa.webp</Key><LastModified>2024-05-01T10:00:00.000Z\
</LastModified><ETag>&quot;5d41402abc4b2a76b9719d911017c592&quot;</ETag><Size>9</Size><Owner><ID>1250000000\
</ID><DisplayName>1250000000</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents>\
<Contents><Key>t%2Fb.webp</Key><LastModified>2024-05-01T10:00:01.000Z</LastModified><ETag>&quot;e2&quot;\
</ETag><Size>9</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>""",
    b"""<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce
  your request rate.</Message><RequestId>NjJm</RequestId><TraceId>t</TraceId></Error>""",
    b"""<Response><Error><Code>InvalidArgument</Code><Message>bad JobLevel</Message></Error></Response>""",
    b"""{"Error": {"Code": "AccessDenied", "Message": "no", "RequestId": "r1"}}""",
    b"""<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1><hr/>nginx</body></html>""",
]
WIRE_TOKENS = [
    b"<!DOCTYPE r [",
    b'<!ENTITY x "xxxxxxxx">',
    b'<!ENTITY x SYSTEM "file:///etc/passwd">',
    b"]>",
    b"&x;",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<?pi x?>",
    b'<?xml version="1.0" encoding="UTF-16"?>',
    b'<?xml version="1.0" encoding="ISO-8859-1"?>',
    b'xmlns="urn:x"',
    b'xmlns:a="urn:a"',
    b"<a:JobId>",
    b"<JobsDetail>",
    b"</JobsDetail>",
    b"<JobId>",
    b"</JobId>",
    b"<JobId/>",
    b"<Width>",
    b"</Width>",
    b"\xc2\xb2",  # superscript two: a digit to str.isdigit(), not to int()
    b"9" * 5000,
    b"-1",
    b"1_000",
    b"\x00",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\r\n",
    b"\n",
    b"{",
    b"[",
    b'"Code":',
    b"null",
]
MANIFEST_TOKENS = [
    b"[",
    b"]",
    b"[[job.priority]]",
    b"[target]",
    b"[source]",
    b"[job]",
    b"[limits]",
    b'"""',
    b"'''",
    b"=",
    b".",
    b'"\\u0000"',
    b'"\\uD800"',
    b"1e309",
    b"inf",
    b"nan",
    b"-0",
    b"0x7fffffffffffffff",
    b"99999999999999999999",
    b"true",
    b"1979-05-27T07:32:00Z",
    b"1979-05-27",
    b"07:32:00",
    b"{}",
    b"{ a = 1 }",
    b"[1, [2]]",
    b"#",
    b"\n",
    b"\r\n",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b'"{key}{dir}{name}{stem}{ext}{{}}"',
    b'"{0}"',
    b'"{key!r}"',
    b'"{key:>10}"',
    b"\xe7\x8c\xab",
]
FULL_MANIFEST = b"""name = "thumbs-nightly"
ledger = "state/thumbs.sqlite"
ledger_sync = "full"

[target]
bucket = "examplebucket-1250000000"
region = "ap-chongqing"
queue_id = "p2911917386e148639319e13c285cc774"
endpoint = "http://127.0.0.1:8080"

[source]
prefix = "photos/"
include = ["*.jpg", "*.png"]
exclude = ["tmp/*"]
min_size = 1024
max_size = 10485760
modified_after = 2024-05-01
modified_before = "2024-06-01T00:00:00Z"

[job]
process_rule = "imageMogr2/thumbnail/400x/format/webp"
is_pic_info = true
output = "thumbs/{dir}/{stem}.webp"
output_bucket = "out-1250000000"
output_region = "ap-guangzhou"
job_level = 1
user_data = "nightly"
callback = "https://example.com/cb"
callback_format = "JSON"
callback_type = "Url"
reprocess_changed = true

[[job.priority]]
match = "vip/*"
job_level = 2

[limits]
rate = 100
concurrency = 16
max_attempts = 5
min_finished = 100
max_failure_percent = 50.0
max_consecutive_same_error = 20
"""


def manifest_seeds() -> list[bytes]:
    seeds = [FULL_MANIFEST]
    for folder in (ROOT / "manifests", ROOT / "tests" / "data" / "bad"):
        seeds.extend(path.read_bytes() for path in sorted(folder.glob("*.toml")))
    return seeds


# -- byte-level mutation --


def mutate(rng: random.Random, data: bytes, seeds: list[bytes], tokens: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randint(0, len(out))
        choice = rng.randrange(9)
        if choice == 0 and out:  # flip a bit
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif choice == 1 and out:  # an interesting byte
            out[rng.randrange(len(out))] = rng.choice(b"\x00\x01\x7f\x80\xff<>&;\"'=[]{}#\n\r\t ")
        elif choice == 2:  # a dictionary token
            out[at:at] = rng.choice(tokens)
        elif choice == 3 and out:  # cut a range
            end = min(len(out), at + rng.randint(1, 64))
            del out[at:end]
        elif choice == 4 and out:  # truncate
            del out[at:]
        elif choice == 5 and out:  # repeat a chunk: deep nesting, long lines
            start = rng.randrange(len(out))
            chunk = bytes(out[start : start + rng.randint(1, 32)])
            out[at:at] = chunk * rng.choice([2, 16, 256, 4096])
        elif choice == 6:  # splice in part of another seed
            other = rng.choice(seeds)
            start = rng.randrange(len(other))
            out[at:at] = other[start : start + rng.randint(1, 256)]
        elif choice == 7:  # random bytes
            out[at:at] = rng.randbytes(rng.randint(1, 16))
        elif choice == 8 and out:  # swap two ranges
            i, j = sorted(rng.randrange(len(out)) for _ in range(2))
            size = rng.randint(1, 32)
            a, b = bytes(out[i : i + size]), bytes(out[j : j + size])
            out[j : j + size], out[i : i + size] = a, b
    return bytes(out[: 1 << 20])


# -- document-level mutation of answers --

XML_TEXTS = [
    "",
    " ",
    "-",
    "0",
    "-1",
    "2",
    "1_000",
    "\u00b2",
    "\u0663",
    "9" * 30,
    "9" * 5000,
    "c1,c2,,c3",
    "%E9%",
    "%2F..%2F",
    "url",
    "URL",
    "true",
    "Success",
    "Paused",
    "\u732b\u200b\ufeff",
    "line\nbreak\r\n",
    "x" * 5000,
]


def mutate_xml(rng: random.Random, seed: bytes) -> bytes:
    """Well-formed variations of an answer: texts, tags and structure changed, not syntax."""
    from lxml import etree

    root = etree.fromstring(seed)
    tags = sorted({el.tag for el in root.iter() if isinstance(el.tag, str)})
    for _ in range(rng.randint(1, 5)):
        elements = [el for el in root.iter() if isinstance(el.tag, str)]
        el = rng.choice(elements)
        parent = el.getparent()
        action = rng.randrange(5)
        if action == 0:
            el.text = rng.choice(XML_TEXTS)
        elif action == 1 and parent is not None:
            parent.remove(el)
        elif action == 2 and parent is not None:
            for _ in range(rng.choice([1, 2, 50])):
                parent.append(copy.deepcopy(el))
        elif action == 3:
            el.tag = rng.choice(tags)
        elif action == 4 and parent is not None:
            rng.choice(elements).append(copy.deepcopy(el))
    return bytes(etree.tostring(root))


# -- document-level mutation of manifests --


def _random_value(rng: random.Random) -> Any:
    kind = rng.randrange(12)
    if kind == 0:
        return rng.choice(
            ["", " ", "0", "key", "{key}", "{nope}", "/abs", "é", "\u0000", "x" * 2000]
        )
    if kind == 1:
        return rng.choice([0, -1, 1, 2, 3, 2**63 - 1, -(2**63)])
    if kind == 2:
        return rng.choice([0.0, -0.0, 0.5, 1e308, float("inf"), float("-inf"), float("nan")])
    if kind == 3:
        return rng.choice([True, False])
    if kind == 4:
        return [_random_value(rng) for _ in range(rng.randint(0, 3))]
    if kind == 5:
        return {rng.choice(["match", "job_level", "x"]): _random_value(rng)}
    if kind == 6:
        return dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
    if kind == 7:
        return dt.date(2024, 5, 1)
    if kind == 8:
        return dt.time(7, 32)
    if kind == 9:
        return (
            "".join(chr(rng.randint(1, 0x10FFFF)) for _ in range(rng.randint(1, 8)))
            .encode("utf-8", "surrogatepass")
            .decode("utf-8", "replace")
        )
    if kind == 10:
        return [{"match": "a/*", "job_level": rng.randint(-1, 3)}]
    return "imageMogr2/" + "x" * rng.randint(0, 50)


def _tables(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield doc
    for value in list(doc.values()):
        if isinstance(value, dict):
            yield from _tables(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from _tables(item)


def mutate_document(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    for _ in range(rng.randint(1, 3)):
        table = rng.choice(list(_tables(doc)))
        action = rng.randrange(4)
        if action == 0 and table:
            table[rng.choice(list(table))] = _random_value(rng)
        elif action == 1 and table:
            del table[rng.choice(list(table))]
        elif action == 2 and table:  # misspell a key
            key = rng.choice(list(table))
            if key:
                i = rng.randrange(len(key))
                table[key[:i] + key[i + 1 :]] = table.pop(key)
        else:
            table[rng.choice(["extra", "name", "csv", "template_id", "priority", "limits"])] = (
                _random_value(rng)
            )
    return doc


def _toml_string(text: str) -> str:
    escaped = []
    for ch in text:
        if ch in '"\\':
            escaped.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF:
            escaped.append(f"\\u{ord(ch):04x}" if ord(ch) < 0xD800 else "\\ufffd")
        else:
            escaped.append(ch)
    return '"' + "".join(escaped) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(text, text)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return _toml_string(str(value))


def _toml_key(key: str) -> str:
    bare = key and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in key)
    return key if bare else _toml_string(key)


def dump_toml(doc: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer: scalars first, then tables, then arrays of tables."""
    lines: list[str] = []
    nested: list[tuple[str, Any, bool]] = []
    for key, value in doc.items():
        if isinstance(value, dict):
            nested.append((key, value, False))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            nested.append((key, value, True))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    text = "\n".join(lines) + "\n"
    for key, value, is_array in nested:
        name = f"{prefix}.{_toml_key(key)}" if prefix else _toml_key(key)
        for table in value if is_array else [value]:
            text += f"\n[[{name}]]\n" if is_array else f"\n[{name}]\n"
            text += dump_toml(table, name)
    return text


# -- targets --


@dataclass
class Stats:
    runs: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    slowest: float = 0.0


def _one_line(message: str) -> str | None:
    if "\n" in message or "\r" in message:
        return "message spans several lines"
    if len(message) > MAX_MESSAGE:
        return f"message of {len(message)} characters"
    return None


WIRE_PARSERS: list[tuple[str, Callable[[bytes], object]]] = [
    ("parse_submit", wire.parse_submit),
    ("parse_describe", wire.parse_describe),
    ("parse_job_page", wire.parse_job_page),
    ("parse_queue_page", wire.parse_queue_page),
    ("parse_queue", wire.parse_queue),
    ("parse_object_page", wire.parse_object_page),
    ("parse_key_page", parse_key_page),
]
CONTENT_TYPES = ["application/xml", "application/json", "text/html; charset=utf-8", ""]


def check_wire(data: bytes, rng: random.Random) -> str:
    """Run every parser on `data`; return an outcome label, or raise AssertionError."""
    labels = []
    for name, parse in WIRE_PARSERS:
        try:
            parse(data)
            labels.append("ok")
        except ResponseError as exc:
            problem = _one_line(str(exc))
            assert problem is None, f"{name}: ResponseError {problem}"
            labels.append(str(exc).split(":")[0][:40])
    status = rng.choice([400, 403, 404, 429, 500, 502, 503])
    error = wire.parse_error(status, data, rng.choice(CONTENT_TYPES))
    assert isinstance(error, ServiceError), f"parse_error returned {type(error).__name__}"
    problem = _one_line(str(error))
    assert problem is None, f"parse_error: ServiceError {problem}"
    return labels[0]


def check_manifest(data: bytes, folder: Path) -> str:
    path = folder / "m.toml"
    path.write_bytes(data)
    shown = str(path)
    try:
        load_manifest(shown)
    except ManifestError as exc:
        message = str(exc)
        problem = _one_line(message)
        assert problem is None, f"ManifestError {problem}"
        assert message.startswith(shown + ":"), "ManifestError does not start with the path"
        return message[len(shown) + 1 :].split(":", 2)[-1].strip()[:30]
    return "ok"


def run_target(
    target: str, seconds: float, rng: random.Random, max_ms: float, findings: Path
) -> Stats:
    stats = Stats()
    seeds = WIRE_SEEDS if target == "wire" else manifest_seeds()
    tokens = WIRE_TOKENS if target == "wire" else MANIFEST_TOKENS
    documents: list[str] = []  # the seeds that are TOML, as written by dump_toml
    for seed in seeds:
        with contextlib.suppress(ValueError, RecursionError):  # the corpus has bad ones
            documents.append(dump_toml(tomllib.loads(seed.decode())))
    deadline = time.monotonic() + seconds
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        while time.monotonic() < deadline:
            if target == "manifest" and documents and rng.random() < 0.3:
                doc = mutate_document(rng, tomllib.loads(rng.choice(documents)))
                data = dump_toml(doc).encode("utf-8", "surrogatepass")
            elif target == "wire" and rng.random() < 0.3:
                data = mutate_xml(rng, rng.choice(WIRE_SEEDS[:6]))
            else:
                data = mutate(rng, rng.choice(seeds), seeds, tokens)
            started = time.perf_counter()
            try:
                label = check_wire(data, rng) if target == "wire" else check_manifest(data, folder)
            except Exception as exc:  # a finding: anything but the promised outcome
                label = f"FINDING {type(exc).__name__}"
                record(findings, target, data, traceback.format_exc(), stats)
            elapsed = time.perf_counter() - started
            stats.slowest = max(stats.slowest, elapsed)
            if elapsed * 1000 > max_ms:
                record(findings, target, data, f"slow: {elapsed * 1000:.0f} ms\n", stats)
            stats.runs += 1
            stats.outcomes[label] = stats.outcomes.get(label, 0) + 1
    return stats


def record(findings: Path, target: str, data: bytes, report: str, stats: Stats) -> None:
    findings.mkdir(parents=True, exist_ok=True)
    name = f"{target}-{hashlib.sha1(data).hexdigest()[:12]}"
    (findings / f"{name}.bin").write_bytes(data)
    (findings / f"{name}.txt").write_text(report)
    stats.findings.append(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=["wire", "manifest", "all"], default="all")
    parser.add_argument("--seconds", type=float, default=60.0, help="per target")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run exactly")
    parser.add_argument("--max-ms", type=float, default=1000.0, help="slowest input allowed")
    parser.add_argument("--memory-mb", type=int, default=2048, help="address-space limit")
    parser.add_argument(
        "--findings", type=Path, default=Path(tempfile.gettempdir()) / "picjobs-fuzz-findings"
    )
    args = parser.parse_args(argv)

    limit = args.memory_mb * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"seed {seed}")
    found = 0
    for target in ["wire", "manifest"] if args.target == "all" else [args.target]:
        stats = run_target(target, args.seconds, random.Random(seed), args.max_ms, args.findings)
        found += len(stats.findings)
        rate = stats.runs / args.seconds
        print(
            f"{target}: {stats.runs} inputs ({rate:.0f}/s), slowest {stats.slowest * 1000:.1f} ms,"
            f" {len(stats.findings)} findings"
        )
        common = sorted(stats.outcomes.items(), key=lambda item: -item[1])[:8]
        for label, count in common:
            print(f"  {count:8d}  {label}")
        for name in stats.findings[:20]:
            print(f"  finding: {args.findings / name}.txt")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
