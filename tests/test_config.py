"""Loading and validating manifests: the model, its defaults, and one-line located errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.exceptions import ManifestError
from orchestrator.manifest import (
    JobConfig,
    Limits,
    Manifest,
    PriorityRule,
    SourceConfig,
    Target,
    load_manifest,
)

# Line numbers matter: tests below point at them.
BASE = """\
name = "thumbs-nightly"

[target]
bucket = "examplebucket-1250000000"
region = "ap-chongqing"

[source]
prefix = "photos/"

[job]
process_rule = "imageMogr2/thumbnail/400x/format/webp"
output = "thumbs/{dir}/{stem}.webp"
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages name the file as given, so load `thumbs.toml` from its own directory."""
    monkeypatch.chdir(tmp_path)


def after(anchor: str, *lines: str, text: str = BASE) -> str:
    """`text` with `lines` inserted after the line that starts with `anchor`."""
    out = []
    for line in text.splitlines():
        out.append(line)
        if line.startswith(anchor):
            out.extend(lines)
    return "\n".join(out) + "\n"


def load(text: str) -> Manifest:
    Path("thumbs.toml").write_text(text, encoding="utf-8")
    return load_manifest("thumbs.toml")


def error_of(text: str | bytes) -> str:
    path = Path("thumbs.toml")
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_manifest("thumbs.toml")
    message = str(caught.value)
    assert "\n" not in message
    return message


# The model


def test_minimal_manifest_loads_with_every_default(tmp_path: Path) -> None:
    assert load(BASE) == Manifest(
        name="thumbs-nightly",
        path=tmp_path.resolve() / "thumbs.toml",
        ledger_path=tmp_path.resolve() / ".picjobs" / "thumbs-nightly.sqlite",
        target=Target("examplebucket-1250000000", "ap-chongqing", None, None),
        source=SourceConfig(kind="prefix", prefix="photos/"),
        job=JobConfig(
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
        job=JobConfig(
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
    fingerprint = load(BASE).operation_fingerprint
    assert fingerprint == "1a1e01cdddd835a3"
    assert load(BASE).operation_fingerprint == fingerprint


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("thumbnail/400x", "thumbnail/401x"),
        ("process_rule", "template_id"),
        ('output = "', 'is_pic_info = true\noutput = "'),
    ],
)
def test_operation_fingerprint_changes_with_the_operation(old: str, new: str) -> None:
    assert load(BASE.replace(old, new)).operation_fingerprint != load(BASE).operation_fingerprint


def test_operation_fingerprint_ignores_where_the_output_goes() -> None:
    changed = BASE.replace("thumbs/{dir}", "small/{dir}")
    changed = after("output", 'output_bucket = "other-1250000000"', text=changed)
    assert load(changed).operation_fingerprint == load(BASE).operation_fingerprint


# Reading the file


def test_a_missing_manifest_is_reported() -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest("nope.toml")
    assert str(caught.value) == "nope.toml: no such file"


def test_a_directory_is_not_a_manifest() -> None:
    Path("dir.toml").mkdir()
    with pytest.raises(ManifestError) as caught:
        load_manifest("dir.toml")
    assert str(caught.value) == "dir.toml: is a directory, not a manifest file"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-16-le"])
def test_a_utf16_manifest_is_rejected_naming_the_encoding(encoding: str) -> None:
    data = BASE.encode(encoding)
    if encoding != "utf-16":
        data = ("\ufeff" + BASE).encode(encoding)
    assert error_of(data) == (
        "thumbs.toml: the file is UTF-16 (it has a byte-order mark); save it as UTF-8"
    )


def test_a_utf16_manifest_without_a_byte_order_mark_is_caught_by_its_nul_bytes() -> None:
    assert error_of(BASE.encode("utf-16-le")) == (
        "thumbs.toml:1: the file contains a NUL byte; a manifest is UTF-8 text"
        " (is it UTF-16 or binary?)"
    )


def test_a_latin1_manifest_is_rejected_at_the_line_of_the_first_bad_byte() -> None:
    text = after("[job]", 'user_data = "café"')
    assert error_of(text.encode("latin-1")) == (
        "thumbs.toml:11: not valid UTF-8 (byte 0xe9; Latin-1 or another legacy encoding?);"
        " save the file as UTF-8"
    )


def test_a_nul_byte_is_reported_at_its_line() -> None:
    assert error_of(BASE.replace("ap-chongqing", "ap-\x00chongqing").encode()) == (
        "thumbs.toml:5: the file contains a NUL byte; a manifest is UTF-8 text"
        " (is it UTF-16 or binary?)"
    )


def test_a_toml_syntax_error_names_the_file_and_line() -> None:
    text = BASE.replace('region = "ap-chongqing"', "region = ap-chongqing")
    assert error_of(text) == "thumbs.toml:5: Invalid value (column 10)"


def test_a_syntax_error_at_the_end_of_the_document_names_the_last_line() -> None:
    assert error_of(BASE + 'user_data = "unterminated') == (
        "thumbs.toml:13: Unterminated string (at end of document)"
    )


def test_a_duplicate_table_is_a_syntax_error() -> None:
    assert error_of(BASE + "[target]\n") == (
        "thumbs.toml:13: Cannot declare ('target',) twice (column 8)"
    )


# Unknown and missing keys


def test_misspelt_key_is_reported_with_the_closest_valid_key() -> None:
    assert error_of(after("output", "job_levle = 1")) == (
        "thumbs.toml:13: [job] unknown key 'job_levle' (did you mean 'job_level'?)"
    )


def test_misspelt_root_key_is_reported_with_the_closest_valid_key() -> None:
    assert error_of(after("name", 'ledgr = "x.sqlite"')) == (
        "thumbs.toml:2: unknown key 'ledgr' (did you mean 'ledger'?)"
    )


def test_unknown_key_without_a_close_match_has_no_hint() -> None:
    assert error_of(after("region", "colour = 'blue'")) == (
        "thumbs.toml:6: [target] unknown key 'colour'"
    )


def test_misspelt_table_is_reported_with_the_closest_table() -> None:
    assert error_of(BASE + "\n[limit]\nrate = 5\n") == (
        "thumbs.toml:14: unknown table [limit] (did you mean [limits]?)"
    )


def test_misspelt_array_of_tables_is_reported_in_its_parent_table() -> None:
    assert error_of(BASE + '\n[[job.priorty]]\nmatch = "a"\njob_level = 1\n') == (
        "thumbs.toml:14: [job] unknown key 'priorty' (did you mean 'priority'?)"
    )


def test_unknown_key_in_a_priority_rule_names_the_rule() -> None:
    text = BASE + '\n[[job.priority]]\nmatch = "a"\njob_level = 1\n'
    text += '\n[[job.priority]]\nmatch = "b"\nlevel = 1\n'
    assert error_of(text) == (
        "thumbs.toml:20: [job.priority #2] unknown key 'level' (did you mean 'job_level'?)"
    )


def test_a_missing_name_is_reported_without_a_line() -> None:
    assert error_of(BASE.replace('name = "thumbs-nightly"', "")) == (
        "thumbs.toml: missing required key 'name'"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'bucket = "examplebucket-1250000000"',
            "thumbs.toml:3: [target] missing required key 'bucket'",
        ),
        ('region = "ap-chongqing"', "thumbs.toml:3: [target] missing required key 'region'"),
        (
            'output = "thumbs/{dir}/{stem}.webp"',
            "thumbs.toml:10: [job] missing required key 'output'",
        ),
    ],
)
def test_a_missing_required_key_points_at_its_table(line: str, message: str) -> None:
    assert error_of(BASE.replace(line, "")) == message


@pytest.mark.parametrize("table", ["target", "source", "job"])
def test_a_missing_required_table_is_reported(table: str) -> None:
    text = "\n".join(line for line in BASE.split("\n\n") if not line.startswith(f"[{table}]"))
    assert error_of(text) == f"thumbs.toml: missing required table [{table}]"


def test_a_missing_match_in_a_priority_rule_points_at_the_rule() -> None:
    assert error_of(BASE + "\n[[job.priority]]\njob_level = 2\n") == (
        "thumbs.toml:14: [job.priority #1] missing required key 'match'"
    )


def test_a_missing_job_level_in_a_priority_rule_points_at_the_rule() -> None:
    assert error_of(BASE + '\n[[job.priority]]\nmatch = "vip/*"\n') == (
        "thumbs.toml:14: [job.priority #1] missing required key 'job_level'"
    )


# Types


@pytest.mark.parametrize(
    ("anchor", "line", "message"),
    [
        (
            "output",
            'job_level = "2"',
            "thumbs.toml:13: [job] job_level: must be an integer, got string '2'",
        ),
        (
            "output",
            "job_level = true",
            "thumbs.toml:13: [job] job_level: must be an integer, got boolean true",
        ),
        (
            "output",
            "job_level = 1.0",
            "thumbs.toml:13: [job] job_level: must be an integer, got float 1.0",
        ),
        (
            "output",
            'is_pic_info = "yes"',
            "thumbs.toml:13: [job] is_pic_info: must be true or false, got string 'yes'",
        ),
        (
            "output",
            "reprocess_changed = 1",
            "thumbs.toml:13: [job] reprocess_changed: must be true or false, got integer 1",
        ),
        (
            "output",
            "user_data = 5",
            "thumbs.toml:13: [job] user_data: must be a string, got integer 5",
        ),
        (
            "prefix",
            'include = "*.jpg"',
            "thumbs.toml:9: [source] include: must be an array of strings, got string '*.jpg'",
        ),
        (
            "prefix",
            "exclude = [1]",
            "thumbs.toml:9: [source] exclude: must be an array of strings, got array",
        ),
        (
            "prefix",
            'min_size = "1"',
            "thumbs.toml:9: [source] min_size: must be an integer, got string '1'",
        ),
        (
            "prefix",
            "modified_after = 12:00:00",
            "thumbs.toml:9: [source] modified_after: must be an ISO date or datetime such as 2024-05-01 or 2024-05-01T10:00:00Z, got time 12:00:00",
        ),
        (
            "prefix",
            'modified_after = "yesterday"',
            "thumbs.toml:9: [source] modified_after: must be an ISO date or datetime such as 2024-05-01 or 2024-05-01T10:00:00Z, got string 'yesterday'",
        ),
        ("name", "ledger = 1", "thumbs.toml:2: ledger: must be a string, got integer 1"),
    ],
)
def test_a_value_of_the_wrong_type_is_reported(anchor: str, line: str, message: str) -> None:
    assert error_of(after(anchor, line)) == message


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'rate = "fast"',
            "thumbs.toml:15: [limits] rate: must be a finite number, got string 'fast'",
        ),
        ("rate = true", "thumbs.toml:15: [limits] rate: must be a finite number, got boolean true"),
        ("rate = inf", "thumbs.toml:15: [limits] rate: must be a finite number, got float inf"),
        ("rate = nan", "thumbs.toml:15: [limits] rate: must be a finite number, got float nan"),
        (
            'concurrency = "16"',
            "thumbs.toml:15: [limits] concurrency: must be an integer, got string '16'",
        ),
        (
            "max_attempts = false",
            "thumbs.toml:15: [limits] max_attempts: must be an integer, got boolean false",
        ),
    ],
)
def test_a_limit_of_the_wrong_type_is_reported(line: str, message: str) -> None:
    assert error_of(BASE + f"\n[limits]\n{line}\n") == message


def test_a_string_where_a_table_belongs_is_reported() -> None:
    text = BASE.replace(
        '[target]\nbucket = "examplebucket-1250000000"\nregion = "ap-chongqing"\n',
        'target = "examplebucket"\n',
    )
    assert error_of(text) == "thumbs.toml:3: target: must be a table, got string 'examplebucket'"


def test_a_name_given_as_a_table_is_reported() -> None:
    text = BASE.replace('name = "thumbs-nightly"', '[name]\nfirst = "x"')
    assert error_of(text) == "thumbs.toml:1: name: must be a string, got table"


def test_an_error_inside_an_inline_table_points_at_the_inline_table() -> None:
    text = BASE.replace(
        '[target]\nbucket = "examplebucket-1250000000"\nregion = "ap-chongqing"\n',
        'target = { bucket = 5, region = "ap-chongqing" }\n\n\n',
    )
    assert error_of(text) == "thumbs.toml:3: [target] bucket: must be a string, got integer 5"


def test_a_long_value_is_shortened_in_the_message() -> None:
    assert error_of(after("output", f"job_level = '{'9' * 100}'")) == (
        f"thumbs.toml:13: [job] job_level: must be an integer, got string '{'9' * 56}..."
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'bucket = "examplebucket-1250000000"',
            'bucket = ""',
            "thumbs.toml:4: [target] bucket: must not be empty",
        ),
        (
            'region = "ap-chongqing"',
            'region = ""',
            "thumbs.toml:5: [target] region: must not be empty",
        ),
        (
            'output = "thumbs/{dir}/{stem}.webp"',
            'output = ""',
            "thumbs.toml:12: [job] output: must not be empty",
        ),
        (
            "imageMogr2/thumbnail/400x/format/webp",
            "",
            "thumbs.toml:11: [job] process_rule: must not be empty",
        ),
        ('prefix = "photos/"', 'csv = ""', "thumbs.toml:8: [source] csv: must not be empty"),
    ],
)
def test_an_empty_string_is_rejected_where_a_value_is_required(
    old: str, new: str, message: str
) -> None:
    assert error_of(BASE.replace(old, new)) == message


# Exactly one of


def test_a_source_needs_one_kind() -> None:
    assert error_of(after("prefix", 'include = ["*.jpg"]').replace('prefix = "photos/"\n', "")) == (
        "thumbs.toml:7: [source] needs exactly one of prefix, csv or inventory, got none"
    )


def test_a_source_with_two_kinds_points_at_the_second() -> None:
    assert error_of(after("prefix", 'csv = "keys.csv"')) == (
        "thumbs.toml:9: [source] needs exactly one of prefix, csv or inventory, got prefix and csv"
    )


def test_a_source_with_three_kinds_lists_them_all() -> None:
    assert error_of(after("prefix", 'csv = "keys.csv"', 'inventory = "m.json"')) == (
        "thumbs.toml:10: [source] needs exactly one of prefix, csv or inventory,"
        " got prefix and csv and inventory"
    )


def test_a_job_needs_a_template_or_a_rule() -> None:
    assert error_of(
        BASE.replace('process_rule = "imageMogr2/thumbnail/400x/format/webp"\n', "")
    ) == ("thumbs.toml:10: [job] needs exactly one of template_id or process_rule, got none")


def test_a_job_cannot_have_both_a_template_and_a_rule() -> None:
    assert error_of(after("[job]", 'template_id = "t1"')) == (
        "thumbs.toml:12: [job] needs exactly one of template_id or process_rule,"
        " got template_id and process_rule"
    )


# Job values


@pytest.mark.parametrize("level", [-1, 3])
def test_job_level_must_be_0_1_or_2(level: int) -> None:
    assert error_of(after("output", f"job_level = {level}")) == (
        f"thumbs.toml:13: [job] job_level: must be 0, 1 or 2, got {level}"
    )


def test_job_level_in_a_priority_rule_must_be_0_1_or_2() -> None:
    text = BASE + '\n[[job.priority]]\nmatch = "a/*"\njob_level = 1\n'
    text += '\n[[job.priority]]\nmatch = "b/*"\njob_level = 7\n'
    assert error_of(text) == "thumbs.toml:20: [job.priority #2] job_level: must be 0, 1 or 2, got 7"


def test_priority_must_be_an_array_of_tables() -> None:
    assert error_of(BASE + '\n[job.priority]\nmatch = "a/*"\njob_level = 1\n') == (
        "thumbs.toml:14: [job] priority: must be an array of tables ([[job.priority]])"
    )


def test_user_data_of_exactly_1024_printable_characters_is_accepted() -> None:
    user_data = (
        "".join(chr(0x20 + i % 95) for i in range(1024)).replace('"', "'").replace("\\", "/")
    )
    assert load(after("output", f'user_data = "{user_data}"')).job.user_data == user_data


def test_user_data_longer_than_1024_characters_is_rejected() -> None:
    assert error_of(after("output", f'user_data = "{"x" * 1025}"')) == (
        "thumbs.toml:13: [job] user_data: must be at most 1024 characters, got 1025"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [("café", "'café'"), ("tab\\there", "'tab\\there'"), ("line\\nbreak", "'line\\nbreak'")],
)
def test_user_data_must_be_printable_ascii(value: str, shown: str) -> None:
    assert error_of(after("output", f'user_data = "{value}"')) == (
        f"thumbs.toml:13: [job] user_data: must be printable ASCII (0x20..0x7e), got {shown}"
    )


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        (
            "out/{path}",
            "unknown placeholder {path} in 'out/{path}'; use {key} {dir} {name} {stem} {ext}",
        ),
        ("out/{}", "unknown placeholder {} in 'out/{}'; use {key} {dir} {name} {stem} {ext}"),
        ("out/{0}", "unknown placeholder {0} in 'out/{0}'; use {key} {dir} {name} {stem} {ext}"),
        (
            "out/{key.upper}",
            "unknown placeholder {key.upper} in 'out/{key.upper}'; use {key} {dir} {name} {stem} {ext}",
        ),
        (
            "out/{key:>10}",
            "placeholder {key} takes no conversion or format spec in 'out/{key:>10}'",
        ),
        ("out/{key!r}", "placeholder {key} takes no conversion or format spec in 'out/{key!r}'"),
        (
            "out/{dir",
            "malformed braces in 'out/{dir' (expected '}' before end of string; write '{{' or '}}' for a literal brace)",
        ),
        (
            "out/dir}",
            "malformed braces in 'out/dir}' (Single '}' encountered in format string; write '{{' or '}}' for a literal brace)",
        ),
        ("/out/{key}", "must not start with '/', got '/out/{key}'"),
    ],
)
def test_output_template_accepts_only_the_known_placeholders(template: str, problem: str) -> None:
    text = BASE.replace("thumbs/{dir}/{stem}.webp", template)
    assert error_of(text) == f"thumbs.toml:12: [job] output: {problem}"


def test_output_template_may_use_every_placeholder_and_escaped_braces() -> None:
    template = "{{v1}}/{key}/{dir}/{name}/{stem}.{ext}"
    assert load(BASE.replace("thumbs/{dir}/{stem}.webp", template)).job.output == template


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'callback_format = "json"',
            "thumbs.toml:13: [job] callback_format: must be 'JSON' or 'XML', got 'json'",
        ),
        (
            'callback_type = "Kafka"',
            "thumbs.toml:13: [job] callback_type: must be 'Url' or 'TDMQ', got 'Kafka'",
        ),
        (
            'callback_type = "TDMQ"',
            "thumbs.toml:13: [job] callback_type 'TDMQ' needs a [job.callback_mq] table",
        ),
        (
            'callback = "hooks.example.com/ci"',
            "thumbs.toml:13: [job] callback: must be an http(s) URL or 'no',"
            " got 'hooks.example.com/ci'",
        ),
    ],
)
def test_callback_settings_are_checked(line: str, message: str) -> None:
    assert error_of(after("output", line)) == message


def test_callback_format_xml_is_accepted() -> None:
    assert load(after("output", 'callback_format = "XML"')).job.callback_format == "XML"


def test_an_endpoint_must_be_an_http_url() -> None:
    assert error_of(after("region", 'endpoint = "127.0.0.1:8080"')) == (
        "thumbs.toml:6: [target] endpoint: must be an http(s) URL or 'embedded',"
        " got '127.0.0.1:8080'"
    )


def test_the_embedded_emulator_is_a_valid_endpoint() -> None:
    assert load(after("region", 'endpoint = "embedded"')).target.endpoint == "embedded"


def test_the_demo_manifest_loads() -> None:
    demo = Path(__file__).parents[1] / "manifests" / "demo.toml"
    assert load_manifest(demo).name == "demo"


# Name


@pytest.mark.parametrize("name", ["a/b", "thumbs nightly", "..", ".", "缩略图", "a:b"])
def test_a_name_must_be_safe_for_a_file_name(name: str) -> None:
    assert error_of(BASE.replace('"thumbs-nightly"', f'"{name}"')) == (
        f"thumbs.toml:1: name: must use only letters, digits, '.', '_' and '-', got {name!r}"
    )


def test_an_empty_name_is_rejected() -> None:
    assert error_of(BASE.replace('"thumbs-nightly"', '""')) == (
        "thumbs.toml:1: name: must not be empty"
    )


def test_a_name_with_dots_underscores_and_dashes_is_accepted(tmp_path: Path) -> None:
    manifest = load(BASE.replace('"thumbs-nightly"', '"Thumbs_v2.night-1"'))
    assert manifest.ledger_path == tmp_path.resolve() / ".picjobs" / "Thumbs_v2.night-1.sqlite"


# Source filters


@pytest.mark.parametrize(
    "line",
    [
        "min_size = 1",
        "max_size = 1",
        "modified_after = 2024-05-01",
        'modified_before = "2024-05-01"',
    ],
)
def test_size_and_date_filters_are_rejected_with_a_csv_source(line: str) -> None:
    text = after("prefix", line).replace('prefix = "photos/"', 'csv = "keys.csv"')
    key = line.split(" ")[0]
    assert error_of(text) == (
        f"thumbs.toml:9: [source] {key}: size and date filters need a prefix or inventory source"
        " (CSV rows carry no size or date)"
    )


def test_key_globs_are_allowed_with_a_csv_source() -> None:
    text = after("prefix", 'include = ["*.jpg"]').replace('prefix = "photos/"', 'csv = "k.csv"')
    assert load(text).source.include == ("*.jpg",)


def test_an_empty_glob_is_rejected() -> None:
    assert error_of(after("prefix", 'include = ["*.jpg", ""]')) == (
        "thumbs.toml:9: [source] include: must not contain an empty pattern"
    )


def test_sizes_must_not_be_negative() -> None:
    assert error_of(after("prefix", "min_size = -1")) == (
        "thumbs.toml:9: [source] min_size: must be at least 0, got -1"
    )


def test_min_size_must_not_exceed_max_size() -> None:
    assert error_of(after("prefix", "min_size = 10", "max_size = 9")) == (
        "thumbs.toml:10: [source] max_size: must be at least min_size (10), got 9"
    )


def test_modified_before_must_not_precede_modified_after() -> None:
    text = after("prefix", "modified_after = 2024-05-02", "modified_before = 2024-05-01")
    assert error_of(text) == (
        "thumbs.toml:10: [source] modified_before: must not be before modified_after"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T10:30:00", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("2024-05-01T10:30:00Z", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("2024-05-01T10:30:00+08:00", datetime(2024, 5, 1, 2, 30, tzinfo=UTC)),
        ('"2024-05-01"', datetime(2024, 5, 1, tzinfo=UTC)),
        ('"2024-05-01T10:30:00Z"', datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ('"2024-05-01 10:30:00-02:00"', datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_dates_become_aware_utc_datetimes(value: str, expected: datetime) -> None:
    source = load(after("prefix", f"modified_after = {value}")).source
    assert source.modified_after == expected
    assert source.modified_after.tzinfo is UTC


# Limits


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("rate = 0", "rate: must be greater than 0, got 0"),
        ("rate = -2.5", "rate: must be greater than 0, got -2.5"),
        ("concurrency = 0", "concurrency: must be at least 1, got 0"),
        ("max_attempts = 0", "max_attempts: must be at least 1, got 0"),
        ("min_finished = -1", "min_finished: must be at least 0, got -1"),
        (
            "max_failure_percent = 100.5",
            "max_failure_percent: must be between 0 and 100, got 100.5",
        ),
        ("max_failure_percent = -1", "max_failure_percent: must be between 0 and 100, got -1"),
        ("max_consecutive_same_error = 0", "max_consecutive_same_error: must be at least 1, got 0"),
    ],
)
def test_limits_out_of_range_are_rejected(line: str, problem: str) -> None:
    assert error_of(BASE + f"\n[limits]\n{line}\n") == f"thumbs.toml:15: [limits] {problem}"


def test_limits_at_the_edges_of_their_ranges_are_accepted() -> None:
    text = BASE + (
        "\n[limits]\nrate = 0.5\nconcurrency = 1\nmax_attempts = 1\nmin_finished = 0\n"
        "max_failure_percent = 0\nmax_consecutive_same_error = 1\n"
    )
    assert load(text).limits == Limits(0.5, 1, 1, 0, 0.0, 1)


def test_limits_not_given_keep_their_defaults() -> None:
    assert load(BASE + "\n[limits]\nrate = 50\n").limits == Limits(rate=50.0)


def test_ledger_sync_defaults_to_normal_and_accepts_full(tmp_path: Path) -> None:
    base = (
        'name = "n"\n[target]\nbucket = "b-1250000000"\nregion = "ap-guangzhou"\n'
        '[source]\nprefix = "p/"\n[job]\nprocess_rule = "imageMogr2/rotate/90"\noutput = "o/{key}"\n'
    )
    plain = tmp_path / "plain.toml"
    plain.write_text(base)
    assert load_manifest(plain).ledger_sync == "NORMAL"
    full = tmp_path / "full.toml"
    full.write_text('ledger_sync = "full"\n' + base)
    assert load_manifest(full).ledger_sync == "FULL"
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('ledger_sync = "off"\n' + base)
    with pytest.raises(ManifestError, match="ledger_sync"):
        load_manifest(wrong)
