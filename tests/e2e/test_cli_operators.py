"""``dbmis operator`` as a separate process on both databases: add with a forced first change,
policy errors, lockout with unlock, reset, role change, deactivation and permissions."""

import json
import re

import pytest


@pytest.fixture
def run(cli):
    cli("init", "--demo")
    return cli


def as_(login, password):
    return ("--operator", login, "--password", password)


def js(run, *args):
    return json.loads(run("--json", *args).stdout)


def test_operator_lifecycle_through_the_cli(run):
    weak = run("operator", "add", "ann", "--name", "Ann", "--role", "clerk", "--password", "short1",
               ok=False)
    assert weak.returncode == 1 and "at least 10 characters" in weak.stderr
    added = js(run, "operator", "add", "ann", "--name", "Ann Clerk", "--role", "clerk",
               "--password", "temp-pass-11")
    assert added["must_change_password"] is True and added["role"] == "clerk"

    # a forced change blocks every other command with a message naming the way out
    blocked = run(*as_("ann", "temp-pass-11"), "customer", "show", "100001", ok=False)
    assert blocked.returncode == 1
    assert "must change the password" in blocked.stderr and "dbmis operator passwd" in blocked.stderr
    reuse = run(*as_("ann", "temp-pass-11"), "operator", "passwd", "--new-password", "temp-pass-11",
                ok=False)
    assert reuse.returncode == 1 and "differ" in reuse.stderr
    run(*as_("ann", "temp-pass-11"), "operator", "passwd", "--new-password", "kiwi-pass-22")
    shown = run(*as_("ann", "kiwi-pass-22"), "customer", "show", "100001")
    assert "Li Wei" in shown.stdout

    # five wrong passwords lock ann; even the right one is refused until a supervisor unlocks
    for _ in range(4):
        p = run(*as_("ann", "nope-nope-1"), "customer", "show", "100001", ok=False)
        assert "wrong operator name or password" in p.stderr
    locked = run(*as_("ann", "nope-nope-1"), "customer", "show", "100001", ok=False)
    assert re.search(r"ann is locked until \d\d:\d\d", locked.stderr), locked.stderr
    right = run(*as_("ann", "kiwi-pass-22"), "customer", "show", "100001", ok=False)
    assert right.returncode == 1 and "locked until" in right.stderr
    listing = run("operator", "list").stdout
    assert re.search(r"^ann\s+clerk\s+Ann Clerk\s+\[locked until \d\d:\d\d\]$", listing, re.M)
    clerk_try = run(*as_("clerk", "clerk-demo-1"), "operator", "unlock", "ann", ok=False)
    assert clerk_try.returncode == 1 and "may not supervise_operators" in clerk_try.stderr
    run("operator", "unlock", "ann")
    run(*as_("ann", "kiwi-pass-22"), "customer", "show", "100001")
    kinds = [e["kind"] for e in js(run, "operator", "events", "ann")]
    assert kinds[:2] == ["unlocked", "locked"] and kinds.count("login_failed") == 5

    # an administrator's reset forces another change; roles change; deactivation ends logins
    run("operator", "reset-password", "ann", "--password", "reset-pass-33")
    again = run(*as_("ann", "reset-pass-33"), "sales", "100001", ok=False)
    assert "dbmis operator passwd" in again.stderr
    run(*as_("ann", "reset-pass-33"), "operator", "passwd", "--new-password", "mango-pass-44")
    assert js(run, "operator", "set-role", "ann", "auditor")["role"] == "auditor"
    denied = run(*as_("ann", "mango-pass-44"), "operator", "list", ok=False)
    assert denied.returncode == 1 and "may not supervise_operators" in denied.stderr
    run("operator", "deactivate", "ann")
    gone = run(*as_("ann", "mango-pass-44"), "customer", "show", "100001", ok=False)
    assert "wrong operator name or password" in gone.stderr
    [ann] = [o for o in js(run, "operator", "list") if o["login"] == "ann"]
    assert ann["active"] is False and ann["role"] == "auditor"


def test_only_administrators_manage_operators(run):
    for args in (("add", "zed", "--name", "Zed", "--role", "clerk", "--password", "zeds-pass-12"),
                 ("deactivate", "clerk"), ("set-role", "clerk", "auditor"),
                 ("reset-password", "clerk", "--password", "new-pass-123")):
        p = run(*as_("clerk", "clerk-demo-1"), "operator", *args, ok=False)
        assert p.returncode == 1 and "may not manage_operators" in p.stderr, args
    assert [o["login"] for o in js(run, "operator", "list")] == ["admin", "clerk"]
    assert js(run, "operator", "list")[1]["role"] == "clerk"
