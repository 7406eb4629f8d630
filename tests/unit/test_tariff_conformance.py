"""Every tariff the plugin manager knows (flat, tiered, tiered-annual and any future one) passes the
tariff conformance suite on the representative contexts it supplies itself."""

from __future__ import annotations

import pytest

from dbmis_core.config import Config
from dbmis_core.plugins import load_plugins
from dbmis_core.testing.suites import TariffSuite

TARIFFS = load_plugins(Config.from_dict({})).tariffs()


def test_the_built_in_tariffs_are_registered():
    assert {"flat", "tiered", "tiered-annual"} <= set(TARIFFS)


@pytest.mark.parametrize("name", sorted(TARIFFS))
def test_every_tariff_supplies_samples(name):
    assert TARIFFS[name].samples, f"tariff {name} supplies no sample contexts for the suite"


for _name, _tariff in sorted(TARIFFS.items()):
    _cls = f"TestTariff_{_name.replace('-', '_')}"
    globals()[_cls] = type(_cls, (TariffSuite,), {"tariff": _tariff, "contexts": []})


def test_the_integrator_guides_tariff_passes_the_suite(tmp_path):
    """The tariff plugin in docs/integrator-guide.md section 5, run from the guide's own code."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "integrator-guide.md").read_text()
    section = guide[guide.index("## 5. Writing a tariff plugin"):]
    plugin, test = re.findall(r"```python\n(.*?)```", section, re.S)[:2]
    (tmp_path / "lifeline_tariff.py").write_text(plugin)
    (tmp_path / "test_lifeline.py").write_text(test)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(tmp_path / "test_lifeline.py")], env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert re.match(r"\d+ passed", summary) and "failed" not in summary and "skipped" not in summary
