"""One TOML file chooses the database, station, plugins, driver, card format and tariffs.

Unset values fall back to defaults under the platform's user data/config folders (platformdirs), so a
fresh workstation runs on an embedded SQLite file without any configuration.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

import attrs

from .errors import ConfigError

ENV_CONFIG = "DBMIS_CONFIG"
ENV_HOME = "DBMIS_HOME"


def _home() -> Path:
    """Folder for the database, key file and simulated cards (``DBMIS_HOME`` overrides)."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME])
    import platformdirs

    return Path(platformdirs.user_data_dir("dbmis", appauthor=False))


DEFAULTS: dict[str, Any] = {
    "database": {"url": ""},
    "station": {"code": "S01", "name": "Main counter"},
    "plugins": {"disabled": []},
    "card": {"driver": "sim", "format": "dbmis-ref", "reader": "", "reissue_fee": "0.00"},
    "tariff": {"default": "flat"},
    "sales": {"refuse_unloaded": True, "min_amount": "1.00", "max_amount": "5000.00",
              # share of each purchase that pays off recorded debts; 0 switches recovery off
              "debt_share": "0.20",
              # most credit a meter may hold after a sale (kWh or money as the meter counts); 0: none
              "hoarding_limit": "0"},
    "keys": {"master_secret_file": ""},
    # backups: folder "" = <home>/backups; time is local HH:MM of the automatic daily backup;
    # passphrase_file holds the passphrase that encrypts the key file into backups (or set
    # DBMIS_BACKUP_PASSPHRASE); archive_url "" = sqlite <home>/archive.sqlite3
    "backup": {"folder": "", "keep_daily": 14, "time": "02:00", "passphrase_file": "",
               "archive_url": "", "archive_after_years": 5},
    # operator passwords and sessions (docs/user-guide/login-and-security.md); idle 0: no idle lock
    "security": {"min_length": 10, "password_history": 3, "lockout_attempts": 5,
                 "lockout_minutes": 15, "idle_lock_minutes": 10},
    # consumption analysis (docs/user-guide/consumption-analysis.md, docs/decisions/0012)
    "consumption": {
        "voltage": 230,              # V per phase, for the most a meter can pass in a month
        "capacity_use_share": 1.0,   # share of rated amps x voltage x phases x hours allowed
        "zero_kwh": 1.0,             # a month at or below this counts as no use
        "zero_months": 2,            # months of no use while buying before it is a finding
        "missing_months": 3,         # months without any return before it is a finding
        "drop_ratio": 0.6,           # a month below this share of the expected use is low
        "persist_months": 3,         # low months in a row before a drop counts
        "min_history_months": 6,     # normal months needed before a change is judged
        "min_peers": 5,              # fewer customers than this: compare with the category
        "window_months": 24,         # months the analysis looks at
    },
    # reports (docs/user-guide/reports.md): a line loss rate above line_loss_high is flagged
    "reports": {"line_loss_high": "0.10"},
    "drivers": {},
    "tariffs": {},
}


def _merge(base: dict, over: dict, path: str = "") -> dict:
    for key, value in over.items():
        where = f"{path}{key}"
        if key not in base and path == "":
            raise ConfigError(f"unknown section [{key}] in configuration; known: "
                              f"{', '.join(sorted(base))}")
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, where + ".")
        else:
            base[key] = value
    return base


@attrs.define
class Config:
    data: dict[str, Any]
    path: Path | None = None
    home: Path = attrs.field(factory=_home)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "Config":
        """Read ``path`` (or ``$DBMIS_CONFIG``, or ``<home>/dbmis.toml`` if present)."""
        home = _home()
        chosen = path or os.environ.get(ENV_CONFIG) or None
        if chosen is None and (home / "dbmis.toml").exists():
            chosen = home / "dbmis.toml"
        data = copy.deepcopy(DEFAULTS)
        if chosen is not None:
            p = Path(chosen)
            try:
                raw = tomllib.loads(p.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"configuration file not found: {p}") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"configuration file {p} is not valid TOML: {exc}") from None
            _merge(data, raw)
            return cls(data=data, path=p, home=home)
        return cls(data=data, path=None, home=home)

    @classmethod
    def from_dict(cls, over: dict[str, Any], home: Path | None = None) -> "Config":
        data = _merge(copy.deepcopy(DEFAULTS), over)
        return cls(data=data, home=home or _home())

    def section(self, name: str) -> dict[str, Any]:
        return self.data.get(name, {})

    @property
    def database_url(self) -> str:
        url = self.data["database"].get("url") or os.environ.get("DBMIS_DATABASE_URL", "")
        if url:
            return url
        return f"sqlite:///{self.home / 'dbmis.sqlite3'}"

    @property
    def master_secret_file(self) -> Path:
        f = self.data["keys"].get("master_secret_file")
        return Path(f) if f else self.home / "keys" / "master.key"

    @property
    def disabled_plugins(self) -> set[str]:
        return set(self.data["plugins"].get("disabled", []))

    @property
    def station_code(self) -> str:
        return self.data["station"]["code"]

    def driver_settings(self, name: str) -> dict[str, Any]:
        s = dict(self.data["drivers"].get(name, {}))
        s.setdefault("home", str(self.home))
        return s

    def tariff_settings(self, name: str) -> dict[str, Any]:
        return dict(self.data["tariffs"].get(name, {}))
