"""Shared fixtures: applications on a real SQLite file and on the real PostgreSQL server."""

from __future__ import annotations

import os

import pytest

from dbmis_core.testing.databases import ADMIN, ADMIN_PW, make_app

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DBMIS_HOME", str(tmp_path))
    monkeypatch.delenv("DBMIS_CONFIG", raising=False)
    return tmp_path


@pytest.fixture
def app(tmp_path, backend, home):
    """An initialised application with an administrator, on each backend."""
    from dbmis_core.services import setup

    application, drop = make_app(tmp_path, backend)
    setup.init(application, ADMIN, ADMIN_PW)
    yield application
    application.close()
    drop()


@pytest.fixture
def admin(app):
    return app.login(ADMIN, ADMIN_PW)


@pytest.fixture
def demo(app, admin):
    """The demo utility seeded; returns the application."""
    from dbmis_core.services import setup

    setup.seed_demo(app, admin)
    return app


@pytest.fixture
def artifacts_dir():
    """Where tests leave files a reviewer can open (screenshots, receipts)."""
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "artifacts")
    os.makedirs(path, exist_ok=True)
    return path
