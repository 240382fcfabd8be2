"""The layering of docs/architecture.md, checked by import-linter's contracts in pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run `lint-imports` on the `orchestrator` package and pyproject.toml found under `root`."""
    script = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _copy_of_the_tree(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "orchestrator",
        tmp_path / "orchestrator",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_import_contract() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract"),
    [
        ("sources/filters.py", "import orchestrator.engine.runner", "Layers go one way"),
        ("ledger/__init__.py", "import orchestrator.report", "Layers go one way"),
        ("cloud/client.py", "import orchestrator.sources.listing", "Layers go one way"),
        ("items.py", "import orchestrator.manifest", "Layers go one way"),
        ("engine/runner.py", "import orchestrator.emulator.server", "Only the CLI imports"),
        ("emulator/app.py", "import orchestrator.ledger", "The emulator stands apart"),
    ],
)
def test_a_wrong_way_import_breaks_a_contract(
    tmp_path: Path, module: str, wrong_import: str, contract: str
) -> None:
    root = _copy_of_the_tree(tmp_path)
    path = root / "orchestrator" / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # the wrong way\n")
    result = _lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 broken" in result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert len(broken) == 1
    assert broken[0].startswith(contract)
