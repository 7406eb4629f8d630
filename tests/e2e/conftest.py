"""The ``dbmis`` program as a separate process on a fresh database of each backend."""

import os
import shutil
import subprocess
import sys

import pytest

from dbmis_core.testing.databases import new_database

DBMIS = shutil.which("dbmis", path=os.path.dirname(sys.executable))


@pytest.fixture
def cli(tmp_path, backend):
    """``cli(*args, ok=True)`` runs ``dbmis`` as the administrator; ``ok`` asserts exit status 0."""
    url, drop = new_database(backend, tmp_path)
    env = dict(os.environ, DBMIS_HOME=str(tmp_path / "home"), DBMIS_DATABASE_URL=url,
               DBMIS_OPERATOR="admin", DBMIS_PASSWORD="admin-pass-1",
               DBMIS_ADMIN_PASSWORD="admin-pass-1")
    env.pop("DBMIS_CONFIG", None)

    def dbmis(*args, ok=True):
        p = subprocess.run([DBMIS, *args], env=env, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        if ok:
            assert p.returncode == 0, p.stderr
        return p

    yield dbmis
    drop()
