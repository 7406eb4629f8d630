"""The headless main job of ``./dev run``: a sale, a month of meter use and the next sale."""

import os
import subprocess
import sys


def test_headless_walkthrough_runs_twice(tmp_path):
    env = dict(os.environ, DBMIS_HOME=str(tmp_path), DBMIS_ADMIN_PASSWORD="admin-pass-1")
    for var in ("DBMIS_CONFIG", "DBMIS_DATABASE_URL", "DBMIS_OPERATOR", "DBMIS_PASSWORD"):
        env.pop(var, None)
    dbmis = os.path.join(os.path.dirname(sys.executable), "dbmis")
    subprocess.run([dbmis, "init", "--demo"], env=env, check=True, capture_output=True)
    first = subprocess.run([sys.executable, "-m", "dbmis_headless.walkthrough"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "card issue 100001" in first.stdout and "Purchase no: 2" in first.stdout
    assert "consumed 75.00" in first.stdout
    # a second run serves the next demo customer; receipt numbers carry on
    second = subprocess.run([sys.executable, "-m", "dbmis_headless.walkthrough"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "card issue 100002" in second.stdout and "S01-00000004" in second.stdout
