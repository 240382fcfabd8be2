"""The bad-input corpus (tests/data/bad/): every case through the real `picjobs run`.

Each case must end in exit code 2 with exactly one line, `picjobs: error: ...`, naming the file
(and the line or key), no traceback, and an existing ledger left byte-for-byte as it was.
Manifest problems are run without `--dry-run`, so loading is all that stands between the bad
file and the ledger; CSV problems are run with `--dry-run`, which needs no network. Files that
would be silly to store (UTF-16, NUL bytes, 10 MB lines) are generated from `good.toml`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.items import Item
from orchestrator.ledger import Ledger

CORPUS = Path(__file__).parent / "data" / "bad"
ENV: dict[str, str | None] = {
    "COS_SECRET_ID": "AKIDbadInputTests0000",
    "COS_SECRET_KEY": "bad-input-secret-key",
    "COS_SECURITY_TOKEN": None,
    "PICJOBS_ENDPOINT": None,
}
TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def case(tmp_path: Path) -> Path:
    """A copy of the corpus, with an existing ledger at the manifests' `state/bad.sqlite`."""
    folder = tmp_path / "case"
    shutil.copytree(CORPUS, folder)
    make_ledger(folder / "state" / "bad.sqlite")
    return folder


def make_ledger(path: Path) -> None:
    item = Item(
        item_id="0" * 32,
        bucket="examplebucket-1250000000",
        key="photos/old.jpg",
        output_bucket="examplebucket-1250000000",
        output_region="ap-chongqing",
        output_key="thumbs/photos/old.webp",
        job_level=0,
    )
    with Ledger.open(path) as ledger:
        assert ledger.add_items([item]) == 1


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def picjobs(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["run", *(str(arg) for arg in args)], env=ENV)


def refused(result: Result) -> str:
    """The one error line of a run that must exit 2, without its `picjobs: error: ` prefix."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert result.stderr.endswith("\n")
    prefix = "picjobs: error: "
    assert lines[0].startswith(prefix)
    return lines[0].removeprefix(prefix)


def refused_leaving_the_ledger(folder: Path, *args: str | Path) -> str:
    ledger = folder / "state" / "bad.sqlite"
    before = digest(ledger)
    message = refused(picjobs(*args))
    assert digest(ledger) == before
    assert not ledger.with_name(ledger.name + "-wal").exists()
    return message


def generated(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def good_text(folder: Path) -> str:
    return (folder / "good.toml").read_text(encoding="utf-8")


def with_csv(folder: Path, name: str, csv_name: str, content: bytes) -> Path:
    """A manifest like good.toml whose source is `csv_name`, holding `content`."""
    generated(folder, csv_name, content)
    text = good_text(folder).replace('csv = "keys.csv"', f'csv = "{csv_name}"')
    return generated(folder, name, text.encode())


# The corpus itself: the base of the generated cases is valid


def test_the_good_manifest_of_the_corpus_passes_a_dry_run(case: Path) -> None:
    result = picjobs("--dry-run", "--quiet", case / "good.toml")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("bad: 2 objects, 2 match the filters\n")


# Manifests


def test_malformed_toml_exits_2_naming_the_file_and_line(case: Path) -> None:
    manifest = case / "malformed.toml"
    # The rest of the line is tomllib's wording, which differs between Python versions.
    assert refused_leaving_the_ledger(case, manifest).startswith(f"{manifest}:15: ")


def test_an_unknown_key_exits_2_naming_the_file_line_and_key(case: Path) -> None:
    manifest = case / "unknown_key.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:16: [job] unknown key 'colour'"
    )


def test_a_misspelt_key_exits_2_naming_the_key_and_the_closest_valid_one(case: Path) -> None:
    manifest = case / "misspelt_key.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:14: [job] unknown key 'proces_rule' (did you mean 'process_rule'?)"
    )


def test_a_misspelt_table_exits_2_naming_the_table_and_the_closest_valid_one(
    case: Path,
) -> None:
    manifest = case / "misspelt_table.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:5: unknown table [taget] (did you mean [target]?)"
    )


def test_a_manifest_with_both_template_id_and_process_rule_exits_2_naming_the_key(
    case: Path,
) -> None:
    manifest = case / "both_operations.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:14: [job] needs exactly one of template_id or process_rule,"
        " got template_id and process_rule"
    )


def test_a_manifest_with_neither_template_id_nor_process_rule_exits_2_naming_the_table(
    case: Path,
) -> None:
    manifest = case / "no_operation.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:13: [job] needs exactly one of template_id or process_rule, got none"
    )


def test_job_level_3_exits_2_naming_the_key(case: Path) -> None:
    manifest = case / "job_level_3.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:16: [job] job_level: must be 0, 1 or 2, got 3"
    )


def test_job_level_high_exits_2_naming_the_key(case: Path) -> None:
    manifest = case / "job_level_high.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:16: [job] job_level: must be an integer, got string 'high'"
    )


def test_user_data_of_1025_characters_exits_2_naming_the_key(case: Path) -> None:
    manifest = case / "user_data_1025.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:16: [job] user_data: must be at most 1024 characters, got 1025"
    )


def test_non_ascii_user_data_exits_2_naming_the_key(case: Path) -> None:
    manifest = case / "user_data_non_ascii.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:16: [job] user_data: must be printable ASCII (0x20..0x7e), got '缩略图-夜间'"
    )


def test_an_output_template_with_an_unknown_placeholder_exits_2_naming_the_key(
    case: Path,
) -> None:
    manifest = case / "unknown_placeholder.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:15: [job] output: unknown placeholder {{basename}} in"
        " 'thumbs/{basename}.webp'; use {key} {dir} {name} {stem} {ext}"
    )


def test_a_latin1_manifest_exits_2_naming_the_line_of_the_first_bad_byte(case: Path) -> None:
    manifest = case / "latin1.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:16: not valid UTF-8 (byte 0xe9; Latin-1 or another legacy encoding?);"
        " save the file as UTF-8"
    )


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_utf16_manifest_with_a_byte_order_mark_exits_2_naming_the_encoding(
    case: Path, encoding: str
) -> None:
    text = good_text(case)
    content = text.encode(encoding) if encoding == "utf-16" else b"\xfe\xff" + text.encode(encoding)
    manifest = generated(case, "utf16.toml", content)
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}: the file is UTF-16 (it has a byte-order mark); save it as UTF-8"
    )


def test_a_utf16_manifest_without_a_byte_order_mark_exits_2_at_its_first_nul_byte(
    case: Path,
) -> None:
    manifest = generated(case, "utf16.toml", good_text(case).encode("utf-16-le"))
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:1: the file contains a NUL byte; a manifest is UTF-8 text"
        " (is it UTF-16 or binary?)"
    )


def test_a_nul_byte_in_a_manifest_exits_2_naming_its_line(case: Path) -> None:
    text = good_text(case).replace("examplebucket-1250000000", "example\x00bucket-1250000000")
    manifest = generated(case, "nul.toml", text.encode())
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:6: the file contains a NUL byte; a manifest is UTF-8 text"
        " (is it UTF-16 or binary?)"
    )


def test_a_manifest_with_a_10_mb_line_exits_2_naming_the_line(case: Path) -> None:
    # A comment: valid TOML, so only the size bound stands in the way.
    content = good_text(case).encode() + b"# " + b"x" * TEN_MB + b"\n"
    manifest = generated(case, "huge.toml", content)
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:16: the file grows past 1 MiB on this line; a manifest is a small text file"
        " (is this the right file?)"
    )


def test_an_integer_of_5000_digits_exits_2_naming_its_line(case: Path) -> None:
    manifest = case / "huge_integer.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:18: a number of more than 4300 digits"
    )


def test_a_rate_beyond_the_largest_float_exits_2_naming_the_key(case: Path) -> None:
    manifest = case / "huge_rate.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:18: [limits] rate: must be a finite number, got integer {'9' * 57}..."
    )


def test_arrays_nested_3000_deep_exit_2_naming_the_line(case: Path) -> None:
    manifest = case / "deep_nesting.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:16: arrays or inline tables nested too deeply"
    )


def test_a_key_of_1000_dotted_parts_exits_2_at_once_naming_the_line(case: Path) -> None:
    manifest = case / "dotted_key.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:16: a key of 1000 dotted parts; no manifest key has more than 3"
    )


def test_an_endpoint_with_a_malformed_ipv6_host_exits_2_naming_the_key(case: Path) -> None:
    manifest = case / "endpoint_not_a_url.toml"
    assert refused_leaving_the_ledger(case, manifest) == (
        f"{manifest}:8: [target] endpoint: must be an http(s) URL or 'embedded',"
        " got 'http://[job]/'"
    )


def test_a_missing_manifest_exits_2_naming_it(case: Path) -> None:
    manifest = case / "absent.toml"
    assert refused_leaving_the_ledger(case, manifest) == f"{manifest}: no such file"


# CSV sources


def test_a_missing_csv_file_exits_2_naming_it(case: Path) -> None:
    missing = (case / "missing.csv").resolve()
    assert refused_leaving_the_ledger(case, "--dry-run", case / "missing_csv.toml") == (
        f"{missing}: no such file"
    )


def test_a_csv_whose_header_lacks_the_key_column_exits_2_naming_the_file_and_line(
    case: Path,
) -> None:
    csv = (case / "no_key_column.csv").resolve()
    assert refused_leaving_the_ledger(case, "--dry-run", case / "no_key_column.toml") == (
        f"{csv}:1: the header has no 'key' column (or, if this is a bucket,key[,versionId] row,"
        " 'path' is not a BucketName-APPID); the columns are key, bucket, output, job_level,"
        " user_data, job"
    )


def test_a_csv_whose_header_names_only_other_columns_exits_2_rather_than_reading_objects(
    case: Path,
) -> None:
    csv = (case / "unnamed_columns.csv").resolve()
    assert refused_leaving_the_ledger(case, "--dry-run", case / "unnamed_columns.toml") == (
        f"{csv}:1: the header has no 'key' column (or, if this is a bucket,key[,versionId] row,"
        " 'name' is not a BucketName-APPID); the columns are key, bucket, output, job_level,"
        " user_data, job"
    )


def test_a_latin1_csv_exits_2_naming_the_line_and_column_of_the_first_bad_byte(
    case: Path,
) -> None:
    csv = (case / "latin1.csv").resolve()
    assert refused_leaving_the_ledger(case, "--dry-run", case / "latin1_csv.toml") == (
        f"{csv}:3: not valid UTF-8 (byte 0xe9 at column 11; Latin-1 or another legacy"
        " encoding?); save the file as UTF-8"
    )


def test_a_utf16_csv_with_a_byte_order_mark_exits_2_naming_the_encoding(case: Path) -> None:
    content = "key\nphotos/a.jpg\n".encode("utf-16")
    manifest = with_csv(case, "utf16_csv.toml", "utf16.csv", content)
    assert refused_leaving_the_ledger(case, "--dry-run", manifest) == (
        f"{(case / 'utf16.csv').resolve()}: the file is UTF-16 (it starts with a byte-order"
        " mark); save it as UTF-8"
    )


def test_a_utf16_csv_without_a_byte_order_mark_exits_2_at_its_first_line(case: Path) -> None:
    content = "key\nphotos/a.jpg\n".encode("utf-16-le")
    manifest = with_csv(case, "utf16_csv.toml", "utf16.csv", content)
    assert refused_leaving_the_ledger(case, "--dry-run", manifest) == (
        f"{(case / 'utf16.csv').resolve()}:1: contains a NUL byte (is it UTF-16 without a"
        " byte-order mark, or not text at all?)"
    )


def test_a_nul_byte_in_a_csv_exits_2_naming_its_line(case: Path) -> None:
    content = b"key\nphotos/a.jpg\nphotos/b\x00.jpg\n"
    manifest = with_csv(case, "nul_csv.toml", "nul.csv", content)
    assert refused_leaving_the_ledger(case, "--dry-run", manifest) == (
        f"{(case / 'nul.csv').resolve()}:3: contains a NUL byte (is it UTF-16 without a"
        " byte-order mark, or not text at all?)"
    )


def test_a_csv_with_a_10_mb_line_exits_2_naming_the_line(case: Path) -> None:
    content = b"key\n" + b"a" * TEN_MB + b"\nphotos/b.jpg\n"
    manifest = with_csv(case, "huge_csv.toml", "huge.csv", content)
    assert refused_leaving_the_ledger(case, "--dry-run", manifest) == (
        f"{(case / 'huge.csv').resolve()}:2: line is longer than 8 MiB"
    )


def test_a_missing_csv_file_in_a_real_run_leaves_the_existing_ledger_untouched(
    case: Path,
) -> None:
    missing = (case / "missing.csv").resolve()
    assert refused_leaving_the_ledger(case, case / "missing_csv.toml") == (
        f"{missing}: no such file"
    )


# Ledger paths


def test_a_ledger_path_through_a_regular_file_exits_2_naming_the_ledger(case: Path) -> None:
    ledger = case / "keys.csv" / "bad.sqlite"
    before = digest(case / "keys.csv")
    assert refused_leaving_the_ledger(case, "--ledger", ledger, case / "good.toml") == (
        f"{ledger}: cannot open ledger: Not a directory: {case / 'keys.csv'}"
    )
    assert digest(case / "keys.csv") == before


def test_a_ledger_path_that_is_a_directory_exits_2_naming_it(case: Path) -> None:
    ledger = case / "state"
    assert refused_leaving_the_ledger(case, "--ledger", ledger, case / "good.toml") == (
        f"{ledger}: cannot open ledger: Is a directory"
    )


def test_a_ledger_path_that_is_not_a_ledger_exits_2_and_leaves_the_file_as_it_was(
    case: Path,
) -> None:
    ledger = case / "keys.csv"
    before = digest(ledger)
    assert refused_leaving_the_ledger(case, "--ledger", ledger, case / "good.toml") == (
        f"{ledger}: cannot open ledger: not a SQLite database"
    )
    assert digest(ledger) == before


@pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() == 0,
    reason="folder permissions bind neither root nor other systems the same way",
)
def test_a_ledger_in_a_read_only_folder_exits_2_naming_it(case: Path) -> None:
    folder = case / "state"
    folder.chmod(0o555)
    try:
        new = folder / "new.sqlite"
        assert refused_leaving_the_ledger(case, "--ledger", new, case / "good.toml") == (
            f"{new}: cannot open ledger: Permission denied"
        )
        assert not new.exists()
        # The existing ledger cannot be written there either (no room for its -wal file).
        existing = folder / "bad.sqlite"
        message = refused_leaving_the_ledger(case, "--ledger", existing, case / "good.toml")
        assert message.startswith(f"{existing}: cannot ")
    finally:
        folder.chmod(0o755)


def _sysfs_refuses_new_files() -> bool:
    if not Path("/sys/kernel").is_dir():
        return False
    try:
        os.close(os.open("/sys/picjobs-probe", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return True
    os.unlink("/sys/picjobs-probe")
    return False


@pytest.mark.skipif(
    not _sysfs_refuses_new_files(), reason="needs a Linux sysfs that refuses new files"
)
def test_a_ledger_in_a_folder_that_refuses_new_files_exits_2_naming_it(case: Path) -> None:
    # sysfs refuses new files even to root, unlike a chmod-ed folder.
    ledger = Path("/sys/picjobs-bad-input.sqlite")
    assert refused_leaving_the_ledger(case, "--ledger", ledger, case / "good.toml") == (
        f"{ledger}: cannot open ledger: Permission denied"
    )
