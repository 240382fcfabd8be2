"""Object keys that are valid in COS but awkward everywhere else, from every kind of source.

COS allows any UTF-8 in a key (ci-api.md §9 lists which characters need percent-encoding), so
each key below must reach CI exactly as it is named, and its output must land at exactly the
key its template gives: no decoding twice, no '+' read as a space, no '#' or '?' cut off as a
URL fragment or query, no '&<>"\\'' mangled by the XML body.

A leading '/': the object of key `k` is addressed by the path `/k` (ci-api.md §9, where the key
`exampleobject(腾讯云)` is signed as `/exampleobject(腾讯云)`; §10's listing shows keys such as
`example-folder-1/example-object-1.jpg`, never one that starts with '/'). A '/' in front of a
key is therefore the separator of that path, not part of the key, which is also how the Python
SDK [py] reads a key (its `format_path` drops a leading '/'). So `/lead.png` in a CSV names the
object `lead.png`: CI is asked to process `lead.png`, the output is planned from `lead.png`,
and `//double-lead.png` names `double-lead.png` likewise, since no key can start with '/'.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from urllib.parse import quote

import pytest

from orchestrator.emulator.faults import FaultConfig
from orchestrator.emulator.server import RunningEmulator
from orchestrator.exceptions import SourceError
from orchestrator.ledger import Ledger
from orchestrator.manifest import load_manifest
from tests.engine.support import BUCKET, run_manifest, seed, write_manifest

# The longest key whose output `o1/{key}` still fits in COS's 850 bytes; every '/'-separated
# part stays within a file name's 255 bytes, so the object is a plain file in the bucket folder.
LONGEST = "/".join(["l" * 200, "o" * 200, "n" * 200, "g" * 240]) + ".png"
assert len(LONGEST.encode()) == 847

AWKWARD = [
    "xml/a&b<c>d\"e'f.png",
    "spaces/two  spaces and a tab\there.png",
    " leading space.png",
    "spaces/trailing space.png ",
    "中文/图片.png",
    "emoji/😀 smile 🎉.png",
    "percent/100%.png",
    "percent/%41%2F%25.png",  # looks encoded, is not: must never be decoded
    "plus/a+b c.png",  # '+' is not a space
    "hash/#1.png",
    "query/what?x=1&y=2.png",
    "comma,semicolon;equals=.png",
    "brackets/[x](y){z}.png",
    "长/" + "中文" * 41 + "/" + "😀" * 60 + ".png",
    LONGEST,
]
# Each key with `/` in front, as some hand-made CSVs write them, names the same object.
LEADING_SLASH = {"/lead.png": "lead.png", "//double-lead.png": "double-lead.png"}
OBJECTS = [*AWKWARD, *LEADING_SLASH.values()]


def _ledger_rows(manifest: Path) -> dict[str, tuple[str, str]]:
    with Ledger.open(load_manifest(manifest).ledger_path) as ledger:
        return {row.key: (str(row.state), row.output_key) for row in ledger.iter_items()}


def _assert_outputs(
    data: Path, emu: RunningEmulator, manifest: Path, expected: dict[str, str]
) -> None:
    """Every key succeeded, the ledger names its output, the output file is there, and no
    other object was written."""
    rows = _ledger_rows(manifest)
    assert rows == {key: ("success", output) for key, output in expected.items()}
    for output in expected.values():
        assert (data / BUCKET / output).is_file(), output
    written = set(emu.backend.bucket(BUCKET).all_keys()) - set(OBJECTS)
    assert written == set(expected.values())


@pytest.fixture
def seeded(data: Path, emulator: RunningEmulator) -> RunningEmulator:
    seed(emulator, data, OBJECTS)
    assert sorted(emulator.backend.bucket(BUCKET).all_keys()) == sorted(OBJECTS)
    return emulator


async def test_awkward_keys_listed_under_a_prefix_are_processed_to_exactly_their_output_keys(
    tmp_path: Path, data: Path, seeded: RunningEmulator
) -> None:
    manifest = write_manifest(
        tmp_path, 'prefix = ""', job='process_rule = "imageMogr2/rotate/90"\noutput = "o1/{key}"'
    )

    report, _ = await run_manifest(manifest, seeded)

    assert report.exit_code == 0
    assert report.expansion.seen == len(OBJECTS)
    _assert_outputs(data, seeded, manifest, {key: f"o1/{key}" for key in OBJECTS})
    stats = seeded.backend.stats.snapshot()
    assert sorted(s["input_object"] for s in stats["submissions"]) == sorted(OBJECTS)
    assert stats["duplicate_submissions"] == 0


async def test_awkward_keys_url_encoded_in_a_headerless_csv_are_decoded_once(
    tmp_path: Path, data: Path, seeded: RunningEmulator
) -> None:
    named = [*AWKWARD, *LEADING_SLASH]
    # Batch-manifest rows: bucket,key with the key percent-encoded, '/' included.
    rows = [f"{BUCKET},{quote(key, safe='')}" for key in named]
    (tmp_path / "keys.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    manifest = write_manifest(
        tmp_path,
        'csv = "keys.csv"',
        job='process_rule = "imageMogr2/rotate/90"\noutput = "o2/{key}"',
    )

    report, _ = await run_manifest(manifest, seeded)

    assert report.exit_code == 0
    _assert_outputs(data, seeded, manifest, {key: f"o2/{key}" for key in OBJECTS})


async def test_awkward_keys_in_a_csv_with_a_header_are_taken_literally_into_every_placeholder(
    tmp_path: Path, data: Path, seeded: RunningEmulator
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["key"])
    writer.writerows([key] for key in [*AWKWARD, *LEADING_SLASH])
    (tmp_path / "keys.csv").write_text(buffer.getvalue(), encoding="utf-8")
    job = 'process_rule = "imageMogr2/rotate/90/format/jpg"\noutput = "o3/{dir}/{stem}.jpg"'
    manifest = write_manifest(tmp_path, 'csv = "keys.csv"', job=job)

    report, _ = await run_manifest(manifest, seeded)

    assert report.exit_code == 0
    expected = {
        "xml/a&b<c>d\"e'f.png": "o3/xml/a&b<c>d\"e'f.jpg",
        "spaces/two  spaces and a tab\there.png": "o3/spaces/two  spaces and a tab\there.jpg",
        " leading space.png": "o3/ leading space.jpg",
        "spaces/trailing space.png ": "o3/spaces/trailing space.jpg",  # the extension is '.png '
        "中文/图片.png": "o3/中文/图片.jpg",
        "emoji/😀 smile 🎉.png": "o3/emoji/😀 smile 🎉.jpg",
        "percent/100%.png": "o3/percent/100%.jpg",
        "percent/%41%2F%25.png": "o3/percent/%41%2F%25.jpg",
        "plus/a+b c.png": "o3/plus/a+b c.jpg",
        "hash/#1.png": "o3/hash/#1.jpg",
        "query/what?x=1&y=2.png": "o3/query/what?x=1&y=2.jpg",
        "comma,semicolon;equals=.png": "o3/comma,semicolon;equals=.jpg",
        "brackets/[x](y){z}.png": "o3/brackets/[x](y){z}.jpg",
        AWKWARD[13]: "o3/长/" + "中文" * 41 + "/" + "😀" * 60 + ".jpg",
        LONGEST: "o3/" + LONGEST.removesuffix(".png") + ".jpg",
        "lead.png": "o3/lead.jpg",
        "double-lead.png": "o3/double-lead.jpg",
    }
    _assert_outputs(data, seeded, manifest, expected)
    # The converted outputs really are JPEGs.
    assert (data / BUCKET / "o3/hash/#1.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


async def test_a_csv_key_made_only_of_slashes_names_no_object_and_nothing_is_submitted(
    tmp_path: Path, seeded: RunningEmulator
) -> None:
    (tmp_path / "keys.csv").write_text("key\nlead.png\n//\n")
    manifest = write_manifest(tmp_path, 'csv = "keys.csv"')

    with pytest.raises(SourceError, match=r"source key '//' \(line 3\) names no object"):
        await run_manifest(manifest, seeded)

    assert seeded.backend.stats.snapshot()["jobs_created"] == 0


async def test_a_lost_answer_for_a_key_with_surrounding_spaces_is_adopted_not_resent(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [" a.png", "b.png ", " c .png", "\td.png"]
    seed(emulator, data, keys)
    emulator.emulator.faults.configure(
        FaultConfig(reset_after=0.9, routes=("POST /pic_jobs",), seed=11)
    )
    (tmp_path / "keys.csv").write_text(
        "\n".join(f"{BUCKET},{quote(key, safe='')}" for key in keys) + "\n"
    )
    manifest = write_manifest(tmp_path, 'csv = "keys.csv"')

    report, _ = await run_manifest(manifest, emulator)

    stats = emulator.backend.stats.snapshot()
    assert report.exit_code == 0
    assert stats["duplicate_submissions"] == 0
    assert report.adopted == stats["faults"]["reset_after"]
