"""The manifest model: what a valid file loads to, its defaults, and the operation fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.manifest import (
    JobConfig,
    Limits,
    Manifest,
    PriorityRule,
    SourceConfig,
    Target,
    load_manifest,
)
from tests.manifest.support import BASE, after, load

# The model


def test_minimal_manifest_loads_with_every_default(tmp_path: Path) -> None:
    assert load(BASE) == Manifest(
        name="thumbs-nightly",
        path=tmp_path.resolve() / "thumbs.toml",
        ledger_path=tmp_path.resolve() / ".picjobs" / "thumbs-nightly.sqlite",
        target=Target("examplebucket-1250000000", "ap-chongqing", None, None),
        source=SourceConfig(kind="prefix", prefix="photos/"),
        jobs=(
            JobConfig(
                template_id=None,
                process_rule="imageMogr2/thumbnail/400x/format/webp",
                is_pic_info=False,
                output="thumbs/{dir}/{stem}.webp",
                output_bucket="examplebucket-1250000000",
                output_region="ap-chongqing",
                job_level=0,
                user_data=None,
                callback=None,
                callback_format=None,
                callback_type=None,
                priority=(),
                reprocess_changed=False,
            ),
        ),
        limits=Limits(),
    )


FULL = """\
name = "thumbs-nightly"
ledger = "state/thumbs.sqlite"

[target]
bucket = "examplebucket-1250000000"
region = "ap-chongqing"
queue_id = "p2911917386e148639319e13c285cc774"
endpoint = "http://127.0.0.1:8080"

[source]
prefix = "photos/"
include = ["*.jpg", "*.png"]
exclude = ["*/tmp/*"]
min_size = 1
max_size = 10485760
modified_after = 2024-05-01
modified_before = 2024-06-01T08:00:00+08:00

[job]
template_id = "t1f5a3a0c0e1d94e17a1e3f2b0c5d6e7f8"
is_pic_info = true
output = "thumbs/{key}"
output_bucket = "outbucket-1250000000"
output_region = "ap-beijing"
job_level = 1
user_data = "nightly run"
callback = "https://hooks.example.com/ci"
callback_format = "JSON"
callback_type = "Url"
reprocess_changed = true

[[job.priority]]
match = "vip/*"
job_level = 2

[[job.priority]]
match = "*.png"
job_level = 0

[limits]
rate = 50
concurrency = 8
max_attempts = 3
min_finished = 10
max_failure_percent = 12.5
max_consecutive_same_error = 4
"""


def test_every_key_of_the_schema_is_loaded(tmp_path: Path) -> None:
    assert load(FULL) == Manifest(
        name="thumbs-nightly",
        path=tmp_path.resolve() / "thumbs.toml",
        ledger_path=tmp_path.resolve() / "state" / "thumbs.sqlite",
        target=Target(
            bucket="examplebucket-1250000000",
            region="ap-chongqing",
            queue_id="p2911917386e148639319e13c285cc774",
            endpoint="http://127.0.0.1:8080",
        ),
        source=SourceConfig(
            kind="prefix",
            prefix="photos/",
            csv_path=None,
            inventory_key=None,
            include=("*.jpg", "*.png"),
            exclude=("*/tmp/*",),
            min_size=1,
            max_size=10485760,
            modified_after=datetime(2024, 5, 1, tzinfo=UTC),
            modified_before=datetime(2024, 6, 1, 0, 0, tzinfo=UTC),
        ),
        jobs=(
            JobConfig(
                template_id="t1f5a3a0c0e1d94e17a1e3f2b0c5d6e7f8",
                process_rule=None,
                is_pic_info=True,
                output="thumbs/{key}",
                output_bucket="outbucket-1250000000",
                output_region="ap-beijing",
                job_level=1,
                user_data="nightly run",
                callback="https://hooks.example.com/ci",
                callback_format="JSON",
                callback_type="Url",
                priority=(PriorityRule("vip/*", 2), PriorityRule("*.png", 0)),
                reprocess_changed=True,
            ),
        ),
        limits=Limits(
            rate=50.0,
            concurrency=8,
            max_attempts=3,
            min_finished=10,
            max_failure_percent=12.5,
            max_consecutive_same_error=4,
        ),
    )


def test_paths_are_relative_to_the_manifest_not_the_working_directory(tmp_path: Path) -> None:
    text = BASE.replace('prefix = "photos/"', 'csv = "lists/keys.csv"')
    text = text.replace('name = "thumbs-nightly"', 'name = "n"\nledger = "db/n.sqlite"')
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "thumbs.toml").write_text(text, encoding="utf-8")
    manifest = load_manifest(tmp_path / "conf" / "thumbs.toml")
    assert manifest.ledger_path == tmp_path.resolve() / "conf" / "db" / "n.sqlite"
    assert manifest.source.csv_path == tmp_path.resolve() / "conf" / "lists" / "keys.csv"


def test_csv_source_need_not_exist_when_the_manifest_is_loaded(tmp_path: Path) -> None:
    manifest = load(BASE.replace('prefix = "photos/"', 'csv = "missing.csv"'))
    assert manifest.source == SourceConfig(kind="csv", csv_path=tmp_path.resolve() / "missing.csv")


def test_inventory_source_keeps_the_manifest_json_key() -> None:
    key = "inventory/examplebucket-1250000000/daily/2024-05-01T00-00Z/manifest.json"
    manifest = load(BASE.replace('prefix = "photos/"', f'inventory = "{key}"'))
    assert manifest.source == SourceConfig(kind="inventory", inventory_key=key)


def test_an_empty_prefix_selects_the_whole_bucket() -> None:
    assert load(BASE.replace('"photos/"', '""')).source.prefix == ""


def test_absolute_ledger_path_is_kept(tmp_path: Path) -> None:
    ledger = tmp_path / "elsewhere" / "l.sqlite"
    manifest = load(after("name", f"ledger = '{ledger}'"))
    assert manifest.ledger_path == ledger


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    Path("thumbs.toml").write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert load_manifest("thumbs.toml").name == "thumbs-nightly"


def test_unicode_values_are_kept() -> None:
    assert load(BASE.replace('"photos/"', '"相册/"')).source.prefix == "相册/"


# The operation fingerprint


def test_operation_fingerprint_is_a_short_stable_hex_digest() -> None:
    fingerprint = load(BASE).jobs[0].operation_fingerprint
    assert fingerprint == "1a1e01cdddd835a3"
    assert load(BASE).jobs[0].operation_fingerprint == fingerprint


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("thumbnail/400x", "thumbnail/401x"),
        ("process_rule", "template_id"),
        ('output = "', 'is_pic_info = true\noutput = "'),
    ],
)
def test_operation_fingerprint_changes_with_the_operation(old: str, new: str) -> None:
    assert (
        load(BASE.replace(old, new)).jobs[0].operation_fingerprint
        != load(BASE).jobs[0].operation_fingerprint
    )


def test_operation_fingerprint_ignores_where_the_output_goes() -> None:
    changed = BASE.replace("thumbs/{dir}", "small/{dir}")
    changed = after("output", 'output_bucket = "other-1250000000"', text=changed)
    assert load(changed).jobs[0].operation_fingerprint == load(BASE).jobs[0].operation_fingerprint
