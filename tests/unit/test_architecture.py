"""The import direction hosts -> plugins/drivers -> core is a checked contract, and hooks are documented."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbmis_core import hookspecs

ROOT = Path(__file__).resolve().parents[2]
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
PACKAGE_DIRS = {init.parent.name: folder for folder in (".", "plugins", "drivers", "hosts")
                for init in (ROOT / folder).glob("dbmis_*/__init__.py")}


def _lint(cwd: Path, pythonpath: list[Path]):
    env = {"PYTHONPATH": ":".join(map(str, pythonpath)), "PATH": "/usr/bin:/bin"}
    return subprocess.run([LINT, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True)


def test_import_contracts_hold():
    p = _lint(ROOT, [ROOT, ROOT / "plugins", ROOT / "drivers", ROOT / "hosts"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Contracts: 3 kept, 0 broken" in p.stdout


@pytest.mark.parametrize("module,forbidden", [
    ("dbmis_core/errors.py", "import dbmis_sim"),
    ("plugins/dbmis_tariffs/flat.py", "import dbmis_refcard"),
    ("drivers/dbmis_sim/reader.py", "import dbmis_headless"),
])
def test_a_broken_contract_fails(tmp_path, module, forbidden):
    """Copies the tree, adds one forbidden import, and expects import-linter to refuse it."""
    for pkg, folder in PACKAGE_DIRS.items():
        shutil.copytree(ROOT / folder / pkg, tmp_path / folder / pkg,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{forbidden}\n")
    p = _lint(tmp_path, [tmp_path, tmp_path / "plugins", tmp_path / "drivers", tmp_path / "hosts"])
    assert p.returncode == 1, p.stdout
    assert "BROKEN" in p.stdout


def _hooks():
    return [n for n in dir(hookspecs) if n.startswith("dbmis_")]


def test_every_hook_has_a_docstring_example_and_reference_entry():
    reference = (ROOT / "docs" / "hooks.md").read_text()
    for name in _hooks():
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "Example::" in doc, f"{name} has no example"
        assert re.search(rf"^## {name}\b", reference, re.M), f"{name} missing from docs/hooks.md"


def test_every_hook_is_exercised_by_a_test():
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py")
                      if p.resolve() != Path(__file__).resolve())
    accessor = {"dbmis_tariffs": "tariffs(", "dbmis_card_formats": "card_format",
                "dbmis_card_drivers": "get_driver(", "dbmis_reports": "reports(",
                "dbmis_qt_pages": "qt_pages(", "dbmis_cli_commands": "cli_commands(",
                "dbmis_consumption_checks": "consumption_checks("}
    for name in _hooks():
        assert name in accessor, f"new hook {name}: add its accessor to this test"
        assert accessor[name] in tests, f"no test calls the accessor of {name}"
