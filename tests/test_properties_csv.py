"""Properties of the CSV source on generated files: both shapes read back exactly, with the
physical line of each row, and any bytes at all end in ObjectRefs or a one-line SourceError."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orchestrator.cloud.signing import uri_encode
from orchestrator.exceptions import SourceError
from orchestrator.items import ObjectRef
from orchestrator.sources.csv import COLUMNS, iter_csv

BUCKET = "examplebucket-1250000000"
moderate = settings(max_examples=40, deadline=None)


@pytest.fixture(autouse=True)
def restore_field_limit() -> Iterator[None]:
    limit = csv.field_size_limit()
    yield
    csv.field_size_limit(limit)


def read(content: bytes) -> list[ObjectRef]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "keys.csv"
        path.write_bytes(content)
        return list(iter_csv(path, BUCKET))


keys = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=30)
buckets = st.from_regex(r"[a-z0-9]{1,12}-[0-9]{4,10}", fullmatch=True)
levels = st.sampled_from([None, 0, 1, 2])
user_data = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
WRITTEN_BY_EXCEL: dict[str, object] = {
    "lineterminator": "\r\n",
    "quoting": csv.QUOTE_MINIMAL,
    "bom": False,
}
# csv.writer quotes minimally only around its own line terminator: with "\n" it leaves a bare
# "\r" unquoted, which no CSV reader (csv.reader included) takes back. So "\n" goes with QUOTE_ALL.
layouts = st.fixed_dictionaries(
    {
        "lineterminator": st.just("\r\n"),
        "quoting": st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
        "bom": st.booleans(),
    }
) | st.fixed_dictionaries(
    {"lineterminator": st.just("\n"), "quoting": st.just(csv.QUOTE_ALL), "bom": st.booleans()}
)


@st.composite
def header_rows(draw: st.DrawFn) -> tuple[list[str], list[dict[str, str]]]:
    """A header with `key` and any of the other columns, in any order, and rows for it."""
    others = draw(st.lists(st.sampled_from(COLUMNS[1:]), unique=True))
    header = draw(st.permutations(["key", *others]))
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        level = draw(levels)
        row = {
            "key": draw(keys.filter(lambda key: bool(key.strip()))),
            "bucket": draw(st.just("") | buckets),
            "output": draw(st.just("") | keys),
            "job_level": "" if level is None else str(level),
            "user_data": draw(user_data),
            "job": draw(st.sampled_from(["", "thumb", " medium "])),
        }
        rows.append({name: row[name] for name in header})
    return header, rows


def write(
    header: list[str] | None, rows: list[list[str]], layout: dict[str, object], blank_every: int
) -> tuple[bytes, list[int]]:
    """The file's bytes and the physical line each data row starts on."""
    out = io.StringIO()
    writer = csv.writer(
        out,
        lineterminator=str(layout["lineterminator"]),
        quoting=int(layout["quoting"]),  # type: ignore[call-overload]
    )
    if header is not None:
        writer.writerow(header)
    starts = []
    for index, row in enumerate(rows):
        if blank_every and index % blank_every == 0:
            out.write(str(layout["lineterminator"]))
        starts.append(out.getvalue().count("\n") + 1)
        writer.writerow(row)
    data = out.getvalue().encode()
    return (b"\xef\xbb\xbf" + data if layout["bom"] else data), starts


@moderate
@given(header_rows(), layouts, st.integers(0, 3))
@example((["key", "output"], [{"key": "0", "output": "\r"}]), WRITTEN_BY_EXCEL, 0)
def test_a_header_csv_is_read_back_row_for_row_with_physical_lines(
    generated: tuple[list[str], list[dict[str, str]]],
    layout: dict[str, object],
    blank_every: int,
) -> None:
    header, rows = generated
    content, starts = write(header, [list(row.values()) for row in rows], layout, blank_every)
    expected = [
        ObjectRef(
            bucket=row.get("bucket", "").strip() or BUCKET,
            key=row["key"],
            output_key=row.get("output") or None,
            job_level=int(row["job_level"]) if row.get("job_level") else None,
            user_data=row.get("user_data") or None,
            line=line,
            job=row.get("job", "").strip() or None,
        )
        for row, line in zip(rows, starts, strict=True)
    ]
    assert read(content) == expected


@moderate
@given(
    st.lists(
        st.tuples(st.just("") | buckets, keys, st.none() | st.text("0123456789abcdef", max_size=8)),
        min_size=1,
        max_size=6,
    ),
    layouts,
)
def test_headerless_rows_give_back_their_url_encoded_keys(
    rows: list[tuple[str, str, str | None]], layout: dict[str, object]
) -> None:
    # A first row whose key cell reads `key` is a header: the one ambiguity of the format.
    if uri_encode(rows[0][1]).lower() == "key":
        rows = rows[1:] or [(BUCKET, "a.jpg", None)]
    cells = [
        [bucket, uri_encode(key)] + ([] if version is None else [version])
        for bucket, key, version in rows
    ]
    content, starts = write(None, cells, layout, 0)
    assert read(content) == [
        ObjectRef(bucket or BUCKET, key, line=line)
        for (bucket, key, _), line in zip(rows, starts, strict=True)
    ]


@moderate
@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_any_bytes_end_in_objects_or_a_one_line_source_error_naming_the_file(
    content: bytes,
) -> None:
    try:
        refs = read(content)
    except SourceError as exc:
        message = str(exc)
        assert "\n" not in message
        assert message.split(":", 1)[0].endswith("keys.csv")
    else:
        assert all(ref.key.strip() and ref.line for ref in refs)


@moderate
@given(header_rows(), st.integers(1, 5))
@example((["key"], [{"key": "\r0"}]), 1)
def test_appending_a_bad_row_is_reported_at_that_row_physical_line(
    generated: tuple[list[str], list[dict[str, str]]], extra_columns: int
) -> None:
    header, rows = generated
    content, _ = write(header, [list(row.values()) for row in rows], WRITTEN_BY_EXCEL, 0)
    bad_line = content.count(b"\n") + 1
    bad = ",".join(["x"] * (len(header) + extra_columns)).encode() + b"\r\n"
    with pytest.raises(SourceError) as info:
        read(content + bad)
    assert str(info.value).endswith(
        f"keys.csv:{bad_line}: expected {len(header)} columns ({', '.join(header)}),"
        f" got {len(header) + extra_columns}"
    )
