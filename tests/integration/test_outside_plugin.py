"""An outside plugin distribution, built and installed like an integrator's, sells with its tariff."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

DBMIS = shutil.which("dbmis", path=os.path.dirname(sys.executable))

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "dbmis-outside-tariff"
version = "1.0"

[tool.setuptools]
py-modules = ["outside_tariff", "outside_vendor_driver"]

[project.entry-points.dbmis]
outside = "outside_tariff"
vendorsdk = "outside_vendor_driver"
"""

TARIFF = '''
from decimal import Decimal
from dbmis_core.domain import Quote
from dbmis_core.hookspecs import hookimpl
from dbmis_core.money import energy_for
from dbmis_core.types import Tariff

PRICE = Decimal("0.8000")

def quote(amount, ctx):
    return Quote(tariff="outside", amount=amount, energy=energy_for(amount, PRICE),
                 unit_price=PRICE, lines=(("Outside energy", amount),))

@hookimpl
def dbmis_tariffs():
    return [Tariff(name="outside", title="An outside tariff", quote=quote)]
'''

DRIVER = """
import nonexistent_vendor_sdk  # the vendor library is not installed here
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "outside_tariff.py").write_text(TARIFF)
    (src / "outside_vendor_driver.py").write_text(DRIVER)
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(src)], check=True,
                   capture_output=True, text=True)
    return target


def test_outside_tariff_is_used_for_a_sale(site, tmp_path):
    home = tmp_path / "home"
    cfg = tmp_path / "dbmis.toml"
    cfg.write_text(textwrap.dedent("""
        [tariff]
        default = "outside"
    """))
    env = dict(os.environ, PYTHONPATH=str(site), DBMIS_HOME=str(home), DBMIS_CONFIG=str(cfg),
               DBMIS_OPERATOR="admin", DBMIS_PASSWORD="admin-pass-1",
               DBMIS_ADMIN_PASSWORD="admin-pass-1")
    env.pop("DBMIS_DATABASE_URL", None)

    def dbmis(*args):
        p = subprocess.run([DBMIS, *args], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout

    listing = json.loads(dbmis("--json", "plugins"))
    by_name = {p["name"]: p for p in listing["plugins"]}
    assert by_name["outside"]["status"] == "loaded"
    assert by_name["outside"]["distribution"] == "dbmis-outside-tariff"
    assert by_name["vendorsdk"]["status"] == "unavailable"
    assert "nonexistent_vendor_sdk" in by_name["vendorsdk"]["reason"]
    assert "outside" in listing["tariffs"] and "flat" in listing["tariffs"]

    dbmis("init", "--demo")
    dbmis("sim", "new-card")
    dbmis("card", "issue", "100001")
    sale = json.loads(dbmis("--json", "vend", "100001", "40.00"))
    assert sale["energy"] == "50.00"  # 40.00 / 0.8000
    sales = json.loads(dbmis("--json", "sales", "100001"))
    assert sales[0]["energy"] == "50.00"
    receipt = dbmis("--json", "customer", "show", "100001")
    assert json.loads(receipt)["sales"][0]["energy"] == "50.00"


def test_unknown_tariff_name_lists_installed(site, tmp_path):
    cfg = tmp_path / "dbmis.toml"
    cfg.write_text('[tariff]\ndefault = "no-such"\n')
    env = dict(os.environ, PYTHONPATH=str(site), DBMIS_HOME=str(tmp_path), DBMIS_CONFIG=str(cfg))
    p = subprocess.run([DBMIS, "plugins"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "unknown tariff 'no-such'; installed: flat, outside" in p.stderr
