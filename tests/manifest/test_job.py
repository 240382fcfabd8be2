"""[job] and [target] values: levels, priority rules, user data, output templates, callbacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.manifest import load_manifest
from tests.manifest.support import BASE, after, error_of, load


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
    assert load(after("output", f'user_data = "{user_data}"')).jobs[0].user_data == user_data


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
    assert load(BASE.replace("thumbs/{dir}/{stem}.webp", template)).jobs[0].output == template


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
    assert load(after("output", 'callback_format = "XML"')).jobs[0].callback_format == "XML"


def test_an_endpoint_must_be_an_http_url() -> None:
    assert error_of(after("region", 'endpoint = "127.0.0.1:8080"')) == (
        "thumbs.toml:6: [target] endpoint: must be an http(s) URL or 'embedded',"
        " got '127.0.0.1:8080'"
    )


def test_the_embedded_emulator_is_a_valid_endpoint() -> None:
    assert load(after("region", 'endpoint = "embedded"')).target.endpoint == "embedded"


def test_the_demo_manifest_loads() -> None:
    demo = Path(__file__).parents[2] / "manifests" / "demo.toml"
    assert load_manifest(demo).name == "demo"


@pytest.mark.parametrize(
    ("line", "mode"),
    [(None, None), ("skip_existing = false", None), ('skip_existing = "exists"', "exists"),
     ('skip_existing = "newer"', "newer")],
)  # fmt: skip
def test_skip_existing_is_false_exists_or_newer_and_off_by_default(
    line: str | None, mode: str | None
) -> None:
    text = BASE if line is None else after("output", line)
    assert load(text).job.skip_existing == mode


@pytest.mark.parametrize(("value", "shown"), [("true", "boolean true"), ('"yes"', "string 'yes'")])
def test_skip_existing_names_its_three_values_when_given_another(value: str, shown: str) -> None:
    assert error_of(after("output", f"skip_existing = {value}")) == (
        f'thumbs.toml:13: [job] skip_existing: must be false, "exists" or "newer", got {shown}'
    )
