"""The metrics file: node_exporter's textfile format, written by prometheus_client."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from orchestrator.report import run_metrics, write_metrics

COUNTS = {"pending": 0, "success": 5, "failed": 1}


def _write(path: Path, manifest: str, last_success_at: str | None = "2026-11-30T10:00:00Z") -> str:
    registry = run_metrics(
        manifest,
        COUNTS,
        seconds=12.3456,
        exit_code=1,
        finished_at="2026-11-30T10:00:05.250+00:00",
        last_success_at=last_success_at,
    )
    write_metrics(path, registry)
    return path.read_text(encoding="utf-8")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_file_holds_one_gauge_per_state_and_the_run_gauges(tmp_path: Path) -> None:
    text = _write(tmp_path / "picjobs.prom", "nightly")
    assert _samples(text) == {
        ("picjobs_items", (("manifest", "nightly"), ("state", "pending"))): 0,
        ("picjobs_items", (("manifest", "nightly"), ("state", "success"))): 5,
        ("picjobs_items", (("manifest", "nightly"), ("state", "failed"))): 1,
        ("picjobs_run_duration_seconds", (("manifest", "nightly"),)): 12.346,
        ("picjobs_run_exit_code", (("manifest", "nightly"),)): 1,
        ("picjobs_run_finished_timestamp_seconds", (("manifest", "nightly"),)): 1796032805,
        ("picjobs_last_success_timestamp_seconds", (("manifest", "nightly"),)): 1796032800,
    }
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert set(families.values()) == {"gauge"}
    assert "# TYPE picjobs_items gauge" in text


def test_without_a_successful_run_there_is_no_last_success_gauge(tmp_path: Path) -> None:
    text = _write(tmp_path / "picjobs.prom", "nightly", last_success_at=None)
    names = {name for name, _ in _samples(text)}
    assert "picjobs_last_success_timestamp_seconds" not in names
    assert "picjobs_run_exit_code" in names


def test_quotes_backslashes_and_newlines_in_the_manifest_name_are_escaped(tmp_path: Path) -> None:
    awkward = 'say "hi"\\back\nslash 花园'
    text = _write(tmp_path / "picjobs.prom", awkward)
    assert 'manifest="say \\"hi\\"\\\\back\\nslash 花园"' in text
    assert len([line for line in text.splitlines() if line.startswith("picjobs_")]) == 7
    manifests = {dict(labels)["manifest"] for _, labels in _samples(text)}
    assert manifests == {awkward}


def test_the_file_is_replaced_whole_and_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    path = tmp_path / "picjobs.prom"
    path.write_text("stale\n")
    _write(path, "nightly")
    assert "stale" not in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["picjobs.prom"]
