"""The plugin manager: typed accessors, duplicates, unknown names, disabled and broken plugins."""

import types
from decimal import Decimal

import pytest

from dbmis_core.config import Config
from dbmis_core.errors import ConfigError, PluginError
from dbmis_core.hookspecs import hookimpl
from dbmis_core.plugins import DbmisPluginManager, load_plugins
from dbmis_core.types import Tariff


def _tariff_plugin(name, *tariffs):
    mod = types.ModuleType(name)

    @hookimpl
    def dbmis_tariffs():
        return [Tariff(name=t, title=t, quote=lambda a, c: None) for t in tariffs]

    mod.dbmis_tariffs = dbmis_tariffs
    return mod


def test_builtins_load_through_entry_points(tmp_path):
    pm = load_plugins(Config.from_dict({}, home=tmp_path))
    assert {"flat_tariff", "refcard", "sim"} <= set(pm.infos)
    assert all(pm.infos[n].distribution == "dbmis" for n in ("flat_tariff", "refcard", "sim"))
    assert pm.get_tariff("flat").name == "flat"
    assert pm.get_card_format("dbmis-ref").name == "dbmis-ref"
    assert pm.get_driver("sim").name == "sim"
    assert "sim" in pm.cli_commands()


def test_duplicate_name_names_both_plugins():
    pm = DbmisPluginManager()
    pm.register(_tariff_plugin("a", "flat2"), "a", "dist-a")
    pm.register(_tariff_plugin("b", "flat2"), "b", "dist-b")
    with pytest.raises(PluginError, match=r"registered twice.*dist-.*dist-"):
        pm.tariffs()


def test_unknown_name_lists_installed():
    pm = DbmisPluginManager()
    pm.register(_tariff_plugin("a", "one", "two"), "a")
    with pytest.raises(PluginError, match="unknown tariff 'three'; installed: one, two"):
        pm.get_tariff("three")


def test_wrong_record_type_is_refused():
    pm = DbmisPluginManager()
    mod = types.ModuleType("bad")
    mod.dbmis_tariffs = hookimpl(lambda: ["not a record"])
    pm.register(mod, "bad")
    with pytest.raises(PluginError, match="returned str"):
        pm.tariffs()


def test_failing_hook_marks_plugin_unavailable():
    pm = DbmisPluginManager()
    mod = types.ModuleType("boom")

    @hookimpl
    def dbmis_tariffs():
        raise RuntimeError("vendor SDK exploded")

    mod.dbmis_tariffs = dbmis_tariffs
    pm.register(mod, "boom")
    pm.register(_tariff_plugin("ok", "fine"), "ok")
    assert list(pm.tariffs()) == ["fine"]
    assert pm.infos["boom"].status == "unavailable"
    assert "vendor SDK exploded" in pm.infos["boom"].reason


def test_disabled_plugin_is_blocked_before_loading(tmp_path):
    pm = load_plugins(Config.from_dict({"plugins": {"disabled": ["flat_tariff"]}}, home=tmp_path))
    assert pm.infos["flat_tariff"].status == "disabled"
    assert pm.pm.is_blocked("flat_tariff")
    with pytest.raises(PluginError, match="unknown tariff 'flat'; installed: tiered"):
        pm.get_tariff("flat")
    assert "flat" not in pm.tariffs() and "tiered" in pm.tariffs()


def test_disabling_an_unknown_plugin_is_an_error(tmp_path):
    with pytest.raises(PluginError, match="unknown plugin.*nosuch.*installed:"):
        load_plugins(Config.from_dict({"plugins": {"disabled": ["nosuch"]}}, home=tmp_path))


def test_record_names_are_validated():
    with pytest.raises(ValueError, match="lower-case"):
        Tariff(name="Bad Name", title="x", quote=lambda a, c: None)


def test_configuration_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[tariff\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.load(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[tarif]\ndefault='flat'\n")
    with pytest.raises(ConfigError, match=r"unknown section \[tarif\]"):
        Config.load(unknown)
    with pytest.raises(ConfigError, match="not found"):
        Config.load(tmp_path / "missing.toml")


def test_configured_flat_prices_are_used(tmp_path):
    from dbmis_core.types import TariffContext

    cfg = Config.from_dict({"tariffs": {"flat": {"residential": "0.5000"}}}, home=tmp_path)
    pm = load_plugins(cfg)
    q = pm.get_tariff("flat").quote(Decimal("10.00"),
                                    TariffContext("residential", cfg.tariff_settings("flat")))
    assert q.energy == Decimal("20.00")


def test_reports_and_qt_pages_are_typed_records():
    from dbmis_core.types import QtPage, ReportSpec

    pm = DbmisPluginManager()
    mod = types.ModuleType("rep")
    mod.dbmis_reports = hookimpl(lambda: [ReportSpec(name="daily", title="Daily", data=list)])
    mod.dbmis_qt_pages = hookimpl(lambda: [
        QtPage(name="b", title="B", menu="M", factory=object, order=2),
        QtPage(name="a", title="A", menu="M", factory=object, order=1)])
    pm.register(mod, "rep")
    assert pm.get_report("daily").title == "Daily"
    assert [p.name for p in pm.qt_pages()] == ["a", "b"]
    assert list(pm.reports()) == ["daily"]
    with pytest.raises(PluginError, match="unknown report 'weekly'; installed: daily"):
        pm.get_report("weekly")
