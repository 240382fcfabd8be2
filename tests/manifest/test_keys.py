"""Unknown keys (with the closest valid one as a hint), missing keys and tables, and the name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.manifest.support import BASE, after, error_of, load

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
