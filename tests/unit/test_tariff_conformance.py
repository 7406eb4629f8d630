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
