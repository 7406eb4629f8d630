"""The plugin manager: loads entry points, tracks unavailable plugins, gives typed accessors.

Host code never calls ``pm.hook.x`` directly; it asks ``get_tariff``, ``get_driver`` and friends, which
validate names and say which plugins are installed when a name is unknown.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterable
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError
from .types import (
    CardFormatSpec,
    CliCommand,
    ConsumptionCheck,
    DriverSpec,
    QtPage,
    ReportSpec,
    Tariff,
)

ENTRY_POINT_GROUP = "dbmis"


@attrs.frozen
class PluginInfo:
    name: str
    distribution: str
    status: str  # "loaded", "unavailable", "disabled"
    reason: str | None = None


class DbmisPluginManager:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._cache: dict[str, dict[str, Any]] = {}

    def load_entry_points(self, disabled: Iterable[str] = ()) -> None:
        """Load every ``dbmis`` entry point except the disabled ones (which are blocked first)."""
        disabled = set(disabled)
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else "?"
            if ep.name in self.infos:
                prev = self.infos[ep.name]
                raise PluginError(f"plugin name {ep.name!r} is used by both {prev.distribution} "
                                  f"and {dist}")
            if ep.name in disabled:
                self.pm.set_blocked(ep.name)
                self.infos[ep.name] = PluginInfo(ep.name, dist, "disabled", "disabled in configuration")
                continue
            try:
                module = ep.load()
            except ImportError as exc:
                self.infos[ep.name] = PluginInfo(ep.name, dist, "unavailable",
                                                 f"unavailable, because {exc}")
                continue
            except Exception as exc:  # a broken plugin must not stop the workstation
                self.infos[ep.name] = PluginInfo(ep.name, dist, "unavailable",
                                                 f"failed to load: {type(exc).__name__}: {exc}")
                continue
            self.register(module, ep.name, dist)
        unknown = disabled - set(self.infos)
        if unknown:
            raise PluginError(f"configuration disables unknown plugin(s) {', '.join(sorted(unknown))}; "
                              f"installed: {', '.join(sorted(self.infos)) or 'none'}")

    def register(self, module: object, name: str, distribution: str = "(local)") -> None:
        self.pm.register(module, name=name)
        self.infos[name] = PluginInfo(name, distribution, "loaded")
        self._cache.clear()

    def _collect(self, hook_name: str, record_type: type) -> dict[str, Any]:
        if hook_name in self._cache:
            return self._cache[hook_name]
        caller = getattr(self.pm.hook, hook_name)
        found: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for impl in caller.get_hookimpls():
            try:
                records = impl.function() or []
            except Exception as exc:
                self._mark_broken(impl.plugin_name, f"{hook_name} failed: {type(exc).__name__}: {exc}")
                continue
            for rec in records:
                if not isinstance(rec, record_type):
                    raise PluginError(f"plugin {impl.plugin_name!r} returned {type(rec).__name__} "
                                      f"from {hook_name}, expected {record_type.__name__}")
                if rec.name in found:
                    raise PluginError(
                        f"{record_type.__name__} {rec.name!r} is registered twice: by "
                        f"{self._dist(owner[rec.name])} and by {self._dist(impl.plugin_name)}")
                found[rec.name] = rec
                owner[rec.name] = impl.plugin_name
        self._cache[hook_name] = found
        return found

    def _dist(self, plugin: str) -> str:
        info = self.infos.get(plugin)
        return f"plugin {plugin!r} ({info.distribution if info else '?'})"

    def _mark_broken(self, plugin: str, reason: str) -> None:
        info = self.infos.get(plugin)
        if info:
            self.infos[plugin] = attrs.evolve(info, status="unavailable", reason=reason)

    @staticmethod
    def _get(kind: str, table: dict[str, Any], name: str) -> Any:
        try:
            return table[name]
        except KeyError:
            raise PluginError(f"unknown {kind} {name!r}; installed: "
                              f"{', '.join(sorted(table)) or 'none'}") from None

    def tariffs(self) -> dict[str, Tariff]:
        return self._collect("dbmis_tariffs", Tariff)

    def card_formats(self) -> dict[str, CardFormatSpec]:
        return self._collect("dbmis_card_formats", CardFormatSpec)

    def drivers(self) -> dict[str, DriverSpec]:
        return self._collect("dbmis_card_drivers", DriverSpec)

    def reports(self) -> dict[str, ReportSpec]:
        return self._collect("dbmis_reports", ReportSpec)

    def qt_pages(self) -> list[QtPage]:
        return sorted(self._collect("dbmis_qt_pages", QtPage).values(), key=lambda p: (p.order, p.name))

    def cli_commands(self) -> dict[str, CliCommand]:
        return self._collect("dbmis_cli_commands", CliCommand)

    def consumption_checks(self) -> dict[str, ConsumptionCheck]:
        return self._collect("dbmis_consumption_checks", ConsumptionCheck)

    def get_tariff(self, name: str) -> Tariff:
        return self._get("tariff", self.tariffs(), name)

    def get_card_format(self, name: str) -> CardFormatSpec:
        return self._get("card format", self.card_formats(), name)

    def get_driver(self, name: str) -> DriverSpec:
        spec = self._get("card driver", self.drivers(), name)
        if spec.unavailable:
            raise PluginError(f"card driver {name!r} is unavailable, because {spec.unavailable}")
        return spec

    def get_report(self, name: str) -> ReportSpec:
        return self._get("report", self.reports(), name)


def load_plugins(config) -> DbmisPluginManager:
    """A plugin manager loaded the way ``config`` says, with the configured names checked."""
    pm = DbmisPluginManager()
    pm.load_entry_points(config.disabled_plugins)
    return pm
