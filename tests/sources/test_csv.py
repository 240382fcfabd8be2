"""The CSV source: both shapes, encodings and line endings, and errors with physical line numbers."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.exceptions import SourceError
from orchestrator.items import ObjectRef
from orchestrator.sources.csv import MAX_FIELD, iter_csv

BUCKET = "examplebucket-1250000000"
COLUMNS = "key, bucket, output, job_level, user_data, job"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages name the file as given, so read `keys.csv` from its own directory."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def restore_field_limit() -> Iterator[None]:
    limit = csv.field_size_limit()
    yield
    csv.field_size_limit(limit)


def write(content: str | bytes) -> Path:
    path = Path("keys.csv")
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode())
    return path


def refs(content: str | bytes) -> list[ObjectRef]:
    return list(iter_csv(write(content), BUCKET))


def keys(content: str | bytes) -> list[str]:
    return [ref.key for ref in refs(content)]


def error_of(content: str | bytes) -> str:
    with pytest.raises(SourceError) as caught:
        refs(content)
    message = str(caught.value)
    assert "\n" not in message
    return message


# With a header


def test_a_header_csv_yields_one_ref_per_row_with_its_overrides() -> None:
    content = (
        "key,bucket,output,job_level,user_data\n"
        "photos/a.jpg,other-1250000000,custom/a.webp,2,batch 7\n"
        "photos/b.jpg,,,,\n"
    )
    assert refs(content) == [
        ObjectRef(
            bucket="other-1250000000",
            key="photos/a.jpg",
            output_key="custom/a.webp",
            job_level=2,
            user_data="batch 7",
            line=2,
        ),
        ObjectRef(bucket=BUCKET, key="photos/b.jpg", line=3),
    ]


def test_the_header_is_found_case_insensitively_in_any_column_and_order() -> None:
    assert refs(" Job_Level , KEY \n1,a.jpg\n") == [ObjectRef(BUCKET, "a.jpg", job_level=1, line=2)]


def test_a_key_only_header_csv_uses_the_target_bucket() -> None:
    assert refs("key\na.jpg\nb/c.png\n") == [
        ObjectRef(BUCKET, "a.jpg", line=2),
        ObjectRef(BUCKET, "b/c.png", line=3),
    ]


def test_header_csv_keys_are_taken_literally() -> None:
    assert keys("key\na%2Bb.jpg\na+b.jpg\n spaced .jpg\n相册/猫.jpg\n") == [
        "a%2Bb.jpg",
        "a+b.jpg",
        " spaced .jpg",
        "相册/猫.jpg",
    ]


def test_unknown_columns_are_an_error_naming_them() -> None:
    assert error_of("key,size,etag\na.jpg,1,x\n") == (
        f"keys.csv:1: unknown columns 'size', 'etag'; the columns are {COLUMNS}"
    )


def test_a_single_unknown_column_is_named() -> None:
    assert error_of("\nkey,priority\na.jpg,1\n") == (
        f"keys.csv:2: unknown column 'priority'; the columns are {COLUMNS}"
    )


def test_an_empty_column_name_is_an_error() -> None:
    assert error_of("key,bucket,\na.jpg,b,\n") == (
        "keys.csv:1: the header has an empty column name (column 3)"
    )


def test_a_repeated_column_is_an_error() -> None:
    assert error_of("key,output,Key\na,b,c\n") == (
        "keys.csv:1: column 'key' appears twice in the header"
    )


# Without a header: bucket,key[,versionId]


def test_headerless_rows_are_bucket_key_and_an_optional_version() -> None:
    assert refs("b1-1250000000,photos/a.jpg\nb2-1250000000,photos/b.jpg,MTg0NDUxNTc\n") == [
        ObjectRef("b1-1250000000", "photos/a.jpg", line=1),
        ObjectRef("b2-1250000000", "photos/b.jpg", line=2),
    ]


@pytest.mark.parametrize(
    ("encoded", "key"),
    [
        ("a%2Bb.jpg", "a+b.jpg"),
        ("a+b.jpg", "a+b.jpg"),
        ("a%20b.jpg", "a b.jpg"),
        ("%E7%9B%B8%E5%86%8C/%E7%8C%AB.jpg", "相册/猫.jpg"),
        ("相册/猫.jpg", "相册/猫.jpg"),
        ("100%25.jpg", "100%.jpg"),
        ("a%2Fb.jpg", "a/b.jpg"),
        ("50%off.jpg", "50%off.jpg"),
    ],
)
def test_headerless_keys_are_url_decoded_keeping_plus_signs(encoded: str, key: str) -> None:
    assert keys(f"{BUCKET},{encoded}\n") == [key]


def test_a_headerless_key_that_is_not_percent_encoded_utf8_is_an_error() -> None:
    assert error_of(f"{BUCKET},ok.jpg\n{BUCKET},caf%E9.jpg\n") == (
        "keys.csv:2: key 'caf%E9.jpg' is not valid URL-encoded UTF-8"
    )


def test_headerless_cells_are_trimmed_as_in_batch_manifests() -> None:
    assert refs(f"{BUCKET}, photos/a%20b.jpg , v1\n") == [
        ObjectRef(BUCKET, "photos/a b.jpg", line=1)
    ]


def test_an_empty_bucket_means_the_target_bucket_in_both_shapes() -> None:
    assert refs(",a.jpg\n") == [ObjectRef(BUCKET, "a.jpg", line=1)]
    assert refs("bucket,key\n,a.jpg\n") == [ObjectRef(BUCKET, "a.jpg", line=2)]


@pytest.mark.parametrize("count", [1, 4])
def test_a_headerless_row_needs_two_or_three_columns(count: int) -> None:
    row = ",".join(["x"] * count)
    assert error_of(f"{BUCKET},a.jpg\n{row}\n") == (
        "keys.csv:2: expected 2 or 3 columns (bucket,key[,versionId]) or a header row with a"
        f" 'key' column, got {count}"
    )


# Both shapes: layout of the file


def test_a_utf8_byte_order_mark_is_skipped_in_both_shapes() -> None:
    assert refs(b"\xef\xbb\xbfkey\na.jpg\n") == [ObjectRef(BUCKET, "a.jpg", line=2)]
    assert refs(b"\xef\xbb\xbfb-1250000000,a.jpg\n") == [ObjectRef("b-1250000000", "a.jpg", line=1)]


def test_crlf_line_endings_are_handled_in_both_shapes() -> None:
    assert refs("key,output\r\na.jpg,o.webp\r\n\r\nb.jpg,\r\n") == [
        ObjectRef(BUCKET, "a.jpg", output_key="o.webp", line=2),
        ObjectRef(BUCKET, "b.jpg", line=4),
    ]
    assert refs(f"{BUCKET},a.jpg\r\n{BUCKET},b.jpg\r\n") == [
        ObjectRef(BUCKET, "a.jpg", line=1),
        ObjectRef(BUCKET, "b.jpg", line=2),
    ]


def test_quoted_fields_may_hold_commas_quotes_and_newlines() -> None:
    content = 'key,user_data\n"a,b.jpg","say ""hi"""\n"multi\r\nline\nkey.jpg",\nafter.jpg,\n'
    assert refs(content) == [
        ObjectRef(BUCKET, "a,b.jpg", user_data='say "hi"', line=2),
        ObjectRef(BUCKET, "multi\r\nline\nkey.jpg", line=3),
        ObjectRef(BUCKET, "after.jpg", line=6),
    ]


def test_blank_lines_are_skipped_but_still_counted() -> None:
    content = "\n   \n,,\nkey,bucket\n\na.jpg,\n , \n\nb.jpg,\n"
    assert refs(content) == [ObjectRef(BUCKET, "a.jpg", line=6), ObjectRef(BUCKET, "b.jpg", line=9)]


def test_the_last_line_needs_no_line_ending() -> None:
    assert refs("key\na.jpg") == [ObjectRef(BUCKET, "a.jpg", line=2)]


@pytest.mark.parametrize("content", ["", "\n\n", "key\n", "KEY,output\r\n\r\n"])
def test_a_file_without_rows_yields_nothing(content: str) -> None:
    assert refs(content) == []


def test_rows_are_read_lazily_so_earlier_rows_arrive_before_a_later_error() -> None:
    rows = iter_csv(write("key,job_level\na.jpg,1\nb.jpg,2\nc.jpg,9\n"), BUCKET)
    assert [next(rows).key, next(rows).key] == ["a.jpg", "b.jpg"]
    with pytest.raises(SourceError):
        next(rows)


# Errors


def test_a_missing_file_is_reported_when_reading_starts() -> None:
    rows = iter_csv(Path("absent.csv"), BUCKET)
    with pytest.raises(SourceError) as caught:
        next(rows)
    assert str(caught.value) == "absent.csv: no such file"


def test_a_directory_is_not_a_csv_file() -> None:
    Path("dir.csv").mkdir()
    with pytest.raises(SourceError) as caught:
        list(iter_csv(Path("dir.csv"), BUCKET))
    assert str(caught.value) == "dir.csv: is a directory, not a CSV file"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("key\na.jpg\n".encode("utf-16"), "UTF-16"),
        ("\ufeffkey\na.jpg\n".encode("utf-16-be"), "UTF-16"),
        ("\ufeffkey\na.jpg\n".encode("utf-32-le"), "UTF-32"),
    ],
)
def test_a_utf16_file_is_rejected_naming_its_encoding(data: bytes, encoding: str) -> None:
    assert error_of(data) == (
        f"keys.csv: the file is {encoding} (it starts with a byte-order mark); save it as UTF-8"
    )


def test_a_utf16_file_without_a_byte_order_mark_is_caught_by_its_nul_bytes() -> None:
    assert error_of("key\na.jpg\n".encode("utf-16-le")) == (
        "keys.csv:1: contains a NUL byte (is it UTF-16 without a byte-order mark,"
        " or not text at all?)"
    )


def test_a_nul_byte_is_reported_at_its_line() -> None:
    assert error_of(b"key\na.jpg\nb\x00.jpg\n") == (
        "keys.csv:3: contains a NUL byte (is it UTF-16 without a byte-order mark,"
        " or not text at all?)"
    )


def test_a_latin1_file_is_rejected_at_the_line_of_the_first_bad_byte() -> None:
    assert error_of("key\na.jpg\nphotos/café.jpg\n".encode("latin-1")) == (
        "keys.csv:3: not valid UTF-8 (byte 0xe9 at column 11; Latin-1 or another legacy"
        " encoding?); save the file as UTF-8"
    )


@pytest.mark.parametrize("header", ["key\n", ""])
def test_a_2_mb_single_line_is_a_field_larger_than_1_mib(header: str) -> None:
    line = f"{BUCKET}," + "a" * 2_000_000 if not header else "a" * 2_000_000
    line_number = 2 if header else 1
    assert error_of(f"{header}{line}\n") == f"keys.csv:{line_number}: a field is larger than 1 MiB"


def test_a_field_of_exactly_1_mib_is_accepted_and_one_more_character_is_not() -> None:
    assert keys("key\n" + "a" * MAX_FIELD + "\n") == ["a" * MAX_FIELD]
    assert error_of("key\n" + "a" * (MAX_FIELD + 1) + "\n") == (
        "keys.csv:2: a field is larger than 1 MiB"
    )


def test_a_large_quoted_field_spanning_lines_is_reported_at_its_first_line() -> None:
    field = "\n".join(["b" * 1000] * 1100)
    assert error_of(f'key\nok.jpg\n"{field}"\n') == "keys.csv:3: a field is larger than 1 MiB"


def test_the_field_limit_holds_even_when_the_csv_module_allows_more() -> None:
    csv.field_size_limit(10 * MAX_FIELD)
    assert error_of("key\n" + "a" * (MAX_FIELD + 1) + "\n") == (
        "keys.csv:2: a field is larger than 1 MiB"
    )


def test_a_line_longer_than_8_mib_is_rejected_without_reading_it_whole() -> None:
    line = "a," * (4 * MAX_FIELD + 1)
    assert error_of(f"key\nok.jpg\n{line}\n") == "keys.csv:3: line is longer than 8 MiB"


def test_a_header_row_needs_one_field_per_column() -> None:
    assert error_of("key,output\na.jpg,o.webp\nb.jpg,o.webp,extra\n") == (
        "keys.csv:3: expected 2 columns (key, output), got 3"
    )


@pytest.mark.parametrize(
    "content", ["key,output\n,o.webp\n", 'key,output\n"  ",o.webp\n', f"{BUCKET},\n"]
)
def test_an_empty_key_is_an_error(content: str) -> None:
    line = 1 if content.startswith(BUCKET) else 2
    assert error_of(content) == f"keys.csv:{line}: empty key"


@pytest.mark.parametrize("value", ["3", "-1", "high", "1.0"])
def test_job_level_must_be_0_1_or_2(value: str) -> None:
    assert error_of(f"key,job_level\na.jpg,1\nb.jpg,{value}\n") == (
        f"keys.csv:3: job_level must be 0, 1 or 2, got {value!r}"
    )


def test_job_level_may_be_padded_with_spaces() -> None:
    assert refs("key,job_level\na.jpg, 2 \n") == [ObjectRef(BUCKET, "a.jpg", job_level=2, line=2)]


def test_user_data_must_be_printable_ascii() -> None:
    assert error_of("key,user_data\na.jpg,café\n") == (
        "keys.csv:2: user_data must be printable ASCII (0x20..0x7e), got 'café'"
    )


def test_user_data_may_be_1024_characters_but_no_more() -> None:
    assert refs(f"key,user_data\na.jpg,{'u' * 1024}\n")[0].user_data == "u" * 1024
    assert error_of(f"key,user_data\na.jpg,{'u' * 1025}\n") == (
        "keys.csv:2: user_data must be at most 1024 characters, got 1025"
    )


def test_an_unterminated_quote_is_reported_where_the_row_starts() -> None:
    assert error_of('key\nok.jpg\n"never closed\nmore\n') == (
        "keys.csv:3: malformed CSV (unexpected end of data)"
    )


def test_a_stray_quote_is_malformed_csv() -> None:
    assert error_of('key\n"a"b.jpg\n') == "keys.csv:2: malformed CSV (',' expected after '\"')"


# Round trip

csv_keys = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1).filter(
    lambda key: bool(key.strip())
)


WRITERS = [
    {},  # the excel dialect: CRLF, quoting only where needed
    {"lineterminator": "\n", "quoting": csv.QUOTE_ALL},
]


@given(st.lists(csv_keys, max_size=20), st.sampled_from(WRITERS))
def test_keys_written_by_csv_writer_are_read_back_exactly(
    written: list[str], options: dict[str, Any]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "keys.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, **options)
            writer.writerow(["key"])
            writer.writerows([key] for key in written)
        assert [ref.key for ref in iter_csv(path, BUCKET)] == written
