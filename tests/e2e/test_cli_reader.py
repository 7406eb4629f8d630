"""Reader state and insert/remove events through the ``dbmis`` program."""

import json
import os
import shutil
import subprocess
import sys
import time

DBMIS = shutil.which("dbmis", path=os.path.dirname(sys.executable))


def test_reader_status_list_and_watch(tmp_path):
    env = dict(os.environ, DBMIS_HOME=str(tmp_path))
    env.pop("DBMIS_CONFIG", None)

    def dbmis(*args):
        p = subprocess.run([DBMIS, *args], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout

    assert json.loads(dbmis("--json", "reader", "status"))["state"] == "no card"
    assert json.loads(dbmis("--json", "reader", "list"))["readers"] == ["DBMIS simulated reader 0"]
    watcher = subprocess.Popen([DBMIS, "--json", "reader", "watch", "--seconds", "6"], env=env,
                               stdout=subprocess.PIPE, text=True)
    first = json.loads(watcher.stdout.readline())  # the watcher is up and has looked at the reader
    while first["state"] != "no card":
        first = json.loads(watcher.stdout.readline())
    dbmis("sim", "new-card")
    assert json.loads(dbmis("--json", "reader", "status"))["state"] == "card present"
    time.sleep(0.5)
    dbmis("sim", "eject")
    out, _ = watcher.communicate(timeout=30)
    kinds = [json.loads(line)["event"] for line in out.splitlines()]
    assert [k for k in kinds if k != "state"] == ["inserted", "removed"]
