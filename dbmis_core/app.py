"""The application object hosts hold: configuration, plugins, database, keys and the card reader.

Everything is created lazily, so ``dbmis --help`` loads no database driver and no card library.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from functools import cached_property

from .config import Config
from .errors import ConfigError


class Application:
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config.load()
        self.operator_provider = None  # set by a host: returns the logged-in Operator

    def operator(self):
        """The operator commands run as; hosts decide how to ask for the password."""
        from .errors import AuthenticationError

        if self.operator_provider is None:
            raise AuthenticationError("no operator is logged in")
        return self.operator_provider()

    @cached_property
    def pm(self):
        from .plugins import load_plugins

        pm = load_plugins(self.config)
        self._check_names(pm)
        return pm

    def _check_names(self, pm) -> None:
        cfg = self.config.data
        pm.get_card_format(cfg["card"]["format"])
        pm.get_tariff(cfg["tariff"]["default"])
        if cfg["card"]["driver"] not in pm.drivers():
            raise ConfigError(f"configured card driver {cfg['card']['driver']!r} is not installed; "
                              f"installed: {', '.join(sorted(pm.drivers())) or 'none'}")

    @cached_property
    def engine(self):
        from .storage.db import make_engine

        return make_engine(self.config.database_url)

    @cached_property
    def _sessions(self):
        from .storage.db import session_factory

        return session_factory(self.engine)

    @cached_property
    def _relaxed_sessions(self):
        """Sessions whose commits do not wait for the disk (storage.db.make_relaxed_engine: on
        SQLite the same pool, on PostgreSQL a second one)."""
        from .storage.db import make_relaxed_engine, session_factory

        return session_factory(make_relaxed_engine(self.engine))

    @property
    def relaxed_engine(self):
        """The relaxed sessions' engine (commits do not wait for the disk)."""
        return self._relaxed_sessions.kw["bind"]

    def relaxed_execute(self, statement, params: dict, connection=None) -> int:
        """One statement (a storage.precompiled.Precompiled) that is its own relaxed transaction,
        in one round trip on PostgreSQL; returns its row count. ``connection``: an idle
        Connection of ``engine`` the caller holds, to run it on instead of taking one from the
        pool (Precompiled.execute_alone)."""
        return statement.execute_alone(self.relaxed_engine, params, connection)

    def uow(self, durable: bool = True, connection=None):
        """A unit of work (storage.db.UnitOfWork); ``connection``: an idle Connection of
        ``engine`` to run on, which the caller keeps (durable units only)."""
        from .storage.db import UnitOfWork

        sessions = self._sessions if durable else self._relaxed_sessions
        uow = UnitOfWork(sessions, connection)
        uow.station = self.config.station_code  # whose audit chain records of this uow go to
        return uow

    @cached_property
    def keys(self):
        from .keys import KeyStore

        return KeyStore.load(self.config.master_secret_file)

    @cached_property
    def card_format(self):
        return self.pm.get_card_format(self.config.data["card"]["format"]).factory(self.keys)

    def open_reader(self):
        name = self.config.data["card"]["driver"]
        return self.pm.get_driver(name).open(self.config.driver_settings(name))

    @cached_property
    def devices(self):
        """The reader's device manager (one I/O worker thread); GUI hosts run card work on it."""
        from .devices import DeviceManager

        return DeviceManager(self.open_reader, name=self.config.data["card"]["driver"] + " reader")

    @property
    def reader(self):
        """The card reader. With the device manager started, only its worker thread may use it;
        a single-threaded host (the command line) opens the reader directly."""
        dm = self.__dict__.get("devices")
        if dm is not None and dm.running:
            return dm.reader
        if "_direct_reader" not in self.__dict__:
            self.__dict__["_direct_reader"] = self.open_reader()
        return self.__dict__["_direct_reader"]

    def tariff(self, name: str | None = None):
        return self.pm.get_tariff(name or self.config.data["tariff"]["default"])

    def login(self, login: str, password: str):
        from .services.auth import authenticate
        from .storage.db import check_schema

        check_schema(self.engine)
        with self.uow() as uow:
            return authenticate(uow, login, password, self.config.section("security"),
                                station=self.config.station_code)

    @contextmanager
    def held_connection(self):
        """A Connection of ``engine`` that this thread keeps from one sale to the next: taking
        one from the pool and giving it back cost a sale about as much CPU as one of its
        statements. It is handed out idle (anything left uncommitted is rolled back); one that
        sat idle longer than storage.db.IDLE_PING_SECONDS goes back to the pool and a fresh
        check-out (which pings) replaces it."""
        from .storage.db import IDLE_PING_SECONDS

        local = self.__dict__.get("_held")
        if local is None:
            local = self.__dict__.setdefault("_held", threading.local())
            self.__dict__.setdefault("_held_all", set())
        conn = getattr(local, "conn", None)
        if conn is not None and (conn.closed or conn.invalidated
                                 or time.monotonic() - local.used > IDLE_PING_SECONDS):
            self._held_all.discard(conn)
            conn.close()
            conn = None
        if conn is None:
            conn = local.conn = self.engine.connect()
            self._held_all.add(conn)
        try:
            yield conn
        finally:
            if not conn.closed and conn.in_transaction():
                conn.rollback()
            local.used = time.monotonic()

    _CONNECTIONS = ("engine", "_sessions", "_relaxed_sessions")

    def release_connections(self) -> None:
        """Close every pooled database connection and forget the engines; the next unit of work
        opens new ones (a restore replaces the database under them)."""
        for conn in self.__dict__.pop("_held_all", ()):
            conn.close()
        self.__dict__.pop("_held", None)
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "_relaxed_sessions" in self.__dict__:
            self.relaxed_engine.dispose()
        for name in self._CONNECTIONS:
            self.__dict__.pop(name, None)

    def close(self) -> None:
        self.release_connections()
        if "devices" in self.__dict__:
            self.devices.stop()
        if "_direct_reader" in self.__dict__:
            self.__dict__.pop("_direct_reader").close()
