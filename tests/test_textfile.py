"""The reading checks the manifest and the CSV source share: encodings, NUL bytes, opening."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.exceptions import ManifestError, SourceError
from orchestrator.textfile import NotText, decode_utf8, foreign_encoding, opened


@pytest.mark.parametrize(
    ("encoding", "named"),
    [
        ("utf-16-le", "UTF-16"),
        ("utf-16-be", "UTF-16"),
        ("utf-32-le", "UTF-32"),
        ("utf-32-be", "UTF-32"),
    ],
)
def test_a_foreign_byte_order_mark_names_its_encoding(encoding: str, named: str) -> None:
    assert foreign_encoding("\ufeffkey\n".encode(encoding)) == named


@pytest.mark.parametrize("head", [b"key\n", b"\xef\xbb\xbfkey\n", b""])
def test_utf8_with_or_without_its_mark_is_not_foreign(head: bytes) -> None:
    assert foreign_encoding(head) is None


def test_utf8_text_decodes_with_its_line_endings() -> None:
    assert decode_utf8("a\r\nçé\n".encode()) == "a\r\nçé\n"


def test_an_undecodable_byte_is_located_by_line_and_column() -> None:
    assert decode_utf8(b"one\ntwo\nthr\xe9e\n") == NotText(line=3, column=4, byte=0xE9, nul=False)


def test_a_nul_byte_is_not_text_although_utf8_allows_it() -> None:
    assert decode_utf8(b"one\n\x00two\n") == NotText(line=2, column=1, byte=0, nul=True)


def test_a_nul_byte_is_reported_before_an_earlier_undecodable_byte() -> None:
    """A NUL byte says more (UTF-16 without a mark, or binary) than the bad byte before it."""
    found = decode_utf8(b"caf\xe9\nok\n\x00\n")
    assert isinstance(found, NotText)
    assert (found.nul, found.line) == (True, 3)


def test_a_missing_file_is_one_line_of_the_callers_error(tmp_path: Path) -> None:
    with (
        pytest.raises(SourceError) as caught,
        opened(tmp_path / "no.csv", "no.csv", "a CSV file", SourceError),
    ):
        pass
    assert str(caught.value) == "no.csv: no such file"


def test_a_directory_is_named_as_not_the_expected_file(tmp_path: Path) -> None:
    with (
        pytest.raises(ManifestError) as caught,
        opened(tmp_path, "dir", "a manifest file", ManifestError),
    ):
        pass
    assert str(caught.value) == "dir: is a directory, not a manifest file"


def test_a_failure_while_reading_is_one_line_of_the_callers_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.csv"
    path.write_bytes(b"key\n")
    with pytest.raises(SourceError) as caught, opened(path, "keys.csv", "a CSV file", SourceError):
        raise OSError(5, "Input/output error")
    assert str(caught.value) == "keys.csv: cannot read: Input/output error"


def test_an_open_file_gives_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "keys.csv"
    path.write_bytes(b"\xef\xbb\xbfkey\n")
    with opened(path, "keys.csv", "a CSV file", SourceError) as handle:
        assert handle.read() == b"\xef\xbb\xbfkey\n"
