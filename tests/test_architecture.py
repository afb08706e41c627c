"""The house: layers checked by import-linter, no import cycle, no module over 500 lines.

The layers contract lives in ``pyproject.toml`` ([tool.importlinter]); CI runs
``lint-imports`` too. These tests also show the contract bites: a copy of the package with
one forbidden import breaks it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "ctxbudget"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_LINES = 500


def _lint(pythonpath: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"},
        check=False,
        cwd=pythonpath,
    )


def test_the_layers_contract_is_kept() -> None:
    result = _lint(PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("session/items.py", "ctxbudget.manager"),  # the core reaching up to the manager
        ("store/base.py", "ctxbudget.engine.resume"),  # the store importing resume back
        ("engine/compactor.py", "ctxbudget.manager"),  # the engine importing its facade
    ],
)
def test_a_forbidden_import_breaks_the_contract(
    tmp_path: Path, module: str, forbidden: str
) -> None:
    copy = tmp_path / "ctxbudget"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / module).open("a") as file:
        file.write(f"\nimport {forbidden}  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "0 kept, 1 broken" in result.stdout
    assert f"-> {forbidden}" in result.stdout


def test_no_import_cycle() -> None:
    graph = grimp.build_graph("ctxbudget")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain is not None:
                cycles.append((module, *chain))
    assert cycles == []


def test_no_source_module_over_500_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_only_entry_points_at_the_top_and_every_folder_says_what_it_is() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "errors.py", "manager.py"]
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        source = (folder / "__init__.py").read_text(encoding="utf-8")
        assert source.lstrip().startswith('"""'), f"{folder.name}/__init__.py has no docstring"
