"""Values of the wrong type, empty values, and keys of which exactly one must be given."""

from __future__ import annotations

import pytest

from tests.manifest.support import BASE, after, error_of

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
