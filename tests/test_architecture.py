"""The package's shape is enforced, not hoped for: import-linter contracts, and no importable `tasks`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)}, capture_output=True, text=True,
        timeout=120,
    )


def test_the_contracts_hold(tmp_path: Path) -> None:
    proc = _lint(REPO / "tasks", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("stages/data.py", "from shears.store import LocalStore", "stages are pure"),
        ("store/layout.py", "import shears.stages.gates", "store knows bytes"),
        ("release/audit.py", "from shears.keras import tfcompat", "release and report run without TensorFlow"),
        ("records/base.py", "import shears.cli", "layers: each sub-package"),
        ("run/steps/__init__.py", "import airflow", "never imports Airflow"),
        ("run/steps/select.py", "import shears.run.steps.trial", "step phases talk through the store"),
        ("records/model.py", "import numpy", "records are plain data"),
        ("policy.py", "import shears.store.layout", "policy floors come from config"),
        ("report/card.py", "import shears.store.layout", "the report reads through report.readers"),
        ("store/base.py", "import shears.store.local", "no import cycles"),
    ],
)
def test_a_wrong_import_breaks_its_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    tree = tmp_path / "src"
    shutil.copytree(REPO / "tasks" / "shears", tree / "shears", ignore=shutil.ignore_patterns("__pycache__"))
    target = tree / "shears" / module
    target.write_text(target.read_text() + f"\n{line}  # deliberately wrong\n")
    proc = _lint(tree, tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    broken = [ln for ln in proc.stdout.splitlines() if ln.rstrip().endswith("BROKEN")]
    assert any(contract in ln for ln in broken), proc.stdout[-3000:]


def test_the_name_tasks_is_not_importable_from_an_installed_shears(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "import tasks"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1 and "No module named 'tasks'" in proc.stderr
    ok = subprocess.run([sys.executable, "-c", "import shears, sys; print('tensorflow' in sys.modules)"],
                        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.strip() == "False"  # `import shears` alone never pulls TensorFlow


def test_the_public_api_resolves_lazily() -> None:
    import shears

    assert set(shears.__all__) <= set(dir(shears))
    assert shears.run_pipeline.__module__ == "shears.run.pipeline"
    assert shears.STEP_NAMES[0] == "validate" and shears.STEP_NAMES[-1] == "publish"
    with pytest.raises(AttributeError):
        _ = shears.no_such_name  # type: ignore[attr-defined]
