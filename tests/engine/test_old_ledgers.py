"""A ledger written before jobs had names resumes with its item ids: nothing is sent again."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli

FIXTURE = Path(__file__).parents[1] / "data" / "ledger-v2"
MEDIUM = """
[[job]]
name = "medium"
process_rule = "imageMogr2/thumbnail/640x"
output = "medium/{key}"
"""


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """demo.toml beside the ledger its run wrote at 1a0396d (every item success)."""
    shutil.copyfile(FIXTURE / "demo.toml", tmp_path / "demo.toml")
    (tmp_path / ".picjobs").mkdir()
    shutil.copyfile(FIXTURE / "demo.sqlite", tmp_path / ".picjobs" / "demo.sqlite")
    return tmp_path / "demo.toml"


def _run(manifest: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["run", "--quiet", str(manifest)], env={"PICJOBS_ENDPOINT": ""}
    )
    return result.exit_code, result.output


def _rows(manifest: Path, *columns: str) -> list[tuple[str, ...]]:
    with sqlite3.connect(manifest.parent / ".picjobs" / "demo.sqlite") as conn:
        listed = ", ".join(("item_id", "state", *columns))
        return conn.execute(f"SELECT {listed} FROM items ORDER BY rowid").fetchall()


def test_the_demo_ledger_of_an_older_picjobs_resumes_submitting_nothing(demo: Path) -> None:
    before = _rows(demo)
    code, output = _run(demo)
    assert code == 0
    assert "success 8 (0 submitted this run" in output
    assert _rows(demo, "job") == [(*row, None) for row in before]


def test_a_single_job_made_one_of_two_keeps_its_items_and_submits_only_the_new_job(
    demo: Path,
) -> None:
    before = _rows(demo)
    text = demo.read_text().replace("[job]\n", '[[job]]\nname = "thumb"\n')
    demo.write_text(text.replace("[limits]", MEDIUM + "\n[limits]"))
    code, output = _run(demo)
    assert code == 0
    assert "success 16 (8 submitted this run" in output
    rows = _rows(demo, "job")
    # The thumbnails keep their ids and states, now under the name the manifest gives them.
    assert rows[:8] == [(*row, "thumb") for row in before]
    assert {job for _id, _state, job in rows[8:]} == {"medium"}
    assert len(list((demo.parent / ".picjobs" / "demo-data").rglob("medium/**/*.jpg"))) == 6
