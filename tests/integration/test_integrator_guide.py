"""The integrator guide's driver is built from the guide's own code blocks, installed as an outside
plugin, passes the driver conformance suite, and is listed by ``dbmis plugins``."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "integrator-guide.md"


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", GUIDE.read_text(), re.S)


def test_guide_driver_passes_the_conformance_suite(tmp_path):
    py, toml = _blocks("python"), _blocks("toml")
    src = tmp_path / "memcard-driver"
    (src / "memcard_driver").mkdir(parents=True)
    (src / "tests").mkdir()
    (src / "memcard_driver" / "__init__.py").write_text(py[0])
    (src / "memcard_driver" / "hooks.py").write_text(py[1])
    (src / "tests" / "test_memcard.py").write_text(py[2])
    (src / "pyproject.toml").write_text(toml[0])
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(src)], check=True,
                   capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(site), DBMIS_HOME=str(tmp_path / "home"))
    env.pop("DBMIS_CONFIG", None)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(src / "tests")], env=env, capture_output=True, text=True,
                           cwd=tmp_path)
    assert tests.returncode == 0, tests.stdout[-3000:]
    summary = tests.stdout.strip().splitlines()[-1]
    assert re.match(r"\d+ passed", summary) and "failed" not in summary and "skipped" not in summary

    dbmis = shutil.which("dbmis", path=os.path.dirname(sys.executable))
    listing = subprocess.run([dbmis, "--json", "plugins"], env=env, capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    assert data["drivers"]["memcard"] == "available"
    assert {"name": "memcard", "distribution": "memcard-driver", "status": "loaded",
            "reason": None} in data["plugins"]
