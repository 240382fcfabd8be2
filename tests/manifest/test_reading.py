"""Reading the file: missing files, encodings, NUL bytes and TOML syntax, each a located line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.exceptions import ManifestError
from orchestrator.manifest import load_manifest
from tests.manifest.support import BASE, after, error_of


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
