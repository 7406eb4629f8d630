"""Operator security on both backends: password policy and history, lockout counted in the database,
forced change, administration, workstation unlock and per-operator preferences."""

from __future__ import annotations

import re
import time

import pytest

from dbmis_core.app import Application
from dbmis_core.config import Config
from dbmis_core.errors import AuthenticationError, NotFound, PermissionDenied, ValidationError
from dbmis_core.services import operators
from dbmis_core.services.auth import OperatorLocked, PasswordChangeRequired, Perm, create_operator

PNG_1 = (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
JPEG_1 = (b"\xff\xd8\xff\xe0" + b"\x00" * 40)


@pytest.fixture
def staff(demo, admin):
    """A supervisor and a second clerk, created the bootstrap way (no forced change)."""
    with demo.uow() as uow:
        create_operator(uow, "sue", "Sue Supervisor", "super-pass-1", "supervisor")
        create_operator(uow, "bob", "Bob Clerk", "bobs-pass-1", "clerk")
        uow.commit()
    return demo


def test_demo_and_seed_operators_log_in_without_a_forced_change(demo):
    clerk = demo.login("clerk", "clerk-demo-1")
    admin = demo.login("admin", "admin-pass-1")
    assert not clerk.must_change_password and not admin.must_change_password
    clerk.require(Perm.VEND)


@pytest.mark.parametrize("password, reason", [
    ("short1", "at least 10 characters"),
    ("onlyletterslong", "letters and digits"),
    ("1234567890123", "letters and digits"),
    ("xnewbie2026x", "may not contain the operator's login"),
])
def test_policy_refuses_weak_new_passwords_and_writes_nothing(demo, admin, password, reason):
    with pytest.raises(ValidationError, match=reason):
        operators.add_operator(demo, admin, "newbie", "New Bie", "clerk", password)
    with pytest.raises(NotFound):
        operators.get_operator(demo, admin, "newbie")


def test_policy_length_comes_from_the_security_section(demo, admin):
    demo.config.data["security"]["min_length"] = 14
    with pytest.raises(ValidationError, match="at least 14 characters"):
        operators.add_operator(demo, admin, "newbie", "New Bie", "clerk", "abcdefgh1234")
    operators.add_operator(demo, admin, "newbie", "New Bie", "clerk", "abcdefgh123456")


def test_new_operator_must_change_password_before_anything(demo, admin):
    info = operators.add_operator(demo, admin, "newbie", "New Bie", "clerk", "first-pass-1")
    assert info.must_change_password and info.role == "clerk"
    op = demo.login("newbie", "first-pass-1")
    assert op.must_change_password
    with pytest.raises(PasswordChangeRequired, match="must change the password"):
        op.require(Perm.VIEW)
    with pytest.raises(AuthenticationError):
        operators.change_password(demo, "newbie", "not-the-pass-1", "second-pass-2")
    with pytest.raises(ValidationError, match="differ"):
        operators.change_password(demo, "newbie", "first-pass-1", "first-pass-1")
    changed = operators.change_password(demo, "newbie", "first-pass-1", "second-pass-2")
    assert not changed.must_change_password
    op = demo.login("newbie", "second-pass-2")
    op.require(Perm.VEND)
    with pytest.raises(AuthenticationError):
        demo.login("newbie", "first-pass-1")


def test_last_three_passwords_cannot_be_reused(demo, admin):
    operators.add_operator(demo, admin, "newbie", "New Bie", "clerk", "pass-one-11")
    operators.change_password(demo, "newbie", "pass-one-11", "pass-two-22")
    operators.change_password(demo, "newbie", "pass-two-22", "pass-three-33")
    with pytest.raises(ValidationError, match="last 3 passwords"):
        operators.change_password(demo, "newbie", "pass-three-33", "pass-one-11")
    operators.change_password(demo, "newbie", "pass-three-33", "pass-four-44")
    # pass-one-11 is now the fourth newest: allowed again
    operators.change_password(demo, "newbie", "pass-four-44", "pass-one-11")
    assert not demo.login("newbie", "pass-one-11").must_change_password


def _second_station(app) -> Application:
    """Another process/station on the same database."""
    return Application(Config.from_dict({"database": {"url": app.config.database_url},
                                         "station": {"code": "S02", "name": "Second"}},
                                        home=app.config.home))


def test_lockout_counts_across_stations_and_refuses_the_right_password(staff):
    other = _second_station(staff)
    try:
        for i in range(4):
            with pytest.raises(AuthenticationError, match="wrong operator name or password"):
                (staff if i % 2 else other).login("bob", f"wrong-{i}")
        with pytest.raises(OperatorLocked, match=r"locked until \d\d:\d\d") as exc:
            other.login("bob", "wrong-4")
        hhmm = re.search(r"\d\d:\d\d", str(exc.value)).group(0)
        for station in (staff, other):
            with pytest.raises(OperatorLocked, match=f"locked until {hhmm}"):
                station.login("bob", "bobs-pass-1")
    finally:
        other.close()
    admin = staff.login("admin", "admin-pass-1")
    info = operators.get_operator(staff, admin, "bob")
    assert info.locked_until is not None and info.failed_attempts == 0
    kinds = [e["kind"] for e in operators.events(staff, admin, "bob")]
    assert kinds.count("login_failed") == 5 and kinds[0] == "locked"


def test_a_success_resets_the_count(staff):
    for _ in range(4):
        with pytest.raises(AuthenticationError):
            staff.login("bob", "wrong-pass-1")
    staff.login("bob", "bobs-pass-1")
    for _ in range(4):
        with pytest.raises(AuthenticationError):
            staff.login("bob", "wrong-pass-1")
    assert staff.login("bob", "bobs-pass-1").login == "bob"


def test_lockout_ends_after_its_timeout(staff):
    staff.config.data["security"].update(lockout_attempts=2, lockout_minutes=0.02)  # 1.2 s
    with pytest.raises(AuthenticationError):
        staff.login("bob", "wrong-pass-1")
    with pytest.raises(OperatorLocked):
        staff.login("bob", "wrong-pass-1")
    with pytest.raises(OperatorLocked):
        staff.login("bob", "bobs-pass-1")
    time.sleep(1.5)
    assert staff.login("bob", "bobs-pass-1").login == "bob"


def test_supervisor_unlocks_a_clerk_cannot(staff):
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            staff.login("bob", "wrong-pass-1")
    clerk = staff.login("clerk", "clerk-demo-1")
    with pytest.raises(PermissionDenied):
        operators.unlock(staff, clerk, "bob")
    with pytest.raises(OperatorLocked):
        staff.login("bob", "bobs-pass-1")
    sue = staff.login("sue", "super-pass-1")
    assert operators.unlock(staff, sue, "bob").locked_until is None
    assert staff.login("bob", "bobs-pass-1").login == "bob"
    [ev] = [e for e in operators.events(staff, sue, "bob") if e["kind"] == "unlocked"]
    assert ev["by"] == "sue"


def test_administration_needs_manage_operators(staff):
    sue = staff.login("sue", "super-pass-1")
    for call in (lambda: operators.add_operator(staff, sue, "x1", "X", "clerk", "good-pass-12"),
                 lambda: operators.deactivate(staff, sue, "bob"),
                 lambda: operators.reset_password(staff, sue, "bob", "good-pass-12"),
                 lambda: operators.set_role(staff, sue, "bob", "auditor")):
        with pytest.raises(PermissionDenied, match="manage_operators"):
            call()
    clerk = staff.login("clerk", "clerk-demo-1")
    with pytest.raises(PermissionDenied):
        operators.list_operators(staff, clerk)
    assert [o.login for o in operators.list_operators(staff, sue)] == ["admin", "bob", "clerk",
                                                                       "sue"]


def test_reset_deactivate_and_role_change(staff, admin):
    info = operators.reset_password(staff, admin, "bob", "temp-pass-77")
    assert info.must_change_password
    bob = staff.login("bob", "temp-pass-77")
    with pytest.raises(PasswordChangeRequired):
        bob.require(Perm.VEND)
    operators.change_password(staff, "bob", "temp-pass-77", "fresh-pass-88")
    assert operators.set_role(staff, admin, "bob", "auditor").role == "auditor"
    assert staff.login("bob", "fresh-pass-88").role == "auditor"
    with pytest.raises(ValidationError, match="unknown role"):
        operators.set_role(staff, admin, "bob", "king")
    operators.deactivate(staff, admin, "bob")
    with pytest.raises(AuthenticationError, match="wrong operator name or password"):
        staff.login("bob", "fresh-pass-88")
    with pytest.raises(ValidationError, match="yourself"):
        operators.deactivate(staff, admin, "admin")
    with pytest.raises(ValidationError, match="last active administrator"):
        operators.set_role(staff, admin, "admin", "clerk")


def test_workstation_unlock_same_operator_or_supervisor(staff):
    bob = staff.login("bob", "bobs-pass-1")
    with pytest.raises(AuthenticationError):
        operators.unlock_session(staff, bob, "bob", "wrong-pass-1")
    assert operators.unlock_session(staff, bob, "bob", "bobs-pass-1").login == "bob"
    with pytest.raises(PermissionDenied, match="only bob or a supervisor"):
        operators.unlock_session(staff, bob, "clerk", "clerk-demo-1")
    assert operators.unlock_session(staff, bob, "sue", "super-pass-1").login == "sue"
    sue = staff.login("sue", "super-pass-1")
    [ev] = [e for e in operators.events(staff, sue, "bob") if e["kind"] == "session_unlocked"]
    assert ev["by"] == "sue" and ev["station"] == "S01"


def test_background_image_is_kept_per_operator(staff, tmp_path):
    bob, sue = staff.login("bob", "bobs-pass-1"), staff.login("sue", "super-pass-1")
    (tmp_path / "a.png").write_bytes(PNG_1)
    (tmp_path / "b.jpg").write_bytes(JPEG_1)
    (tmp_path / "notes.txt").write_text("hello")
    assert operators.background(staff, bob) is None
    operators.set_background(staff, bob, tmp_path / "a.png")
    operators.set_background(staff, sue, tmp_path / "b.jpg")
    assert operators.background(staff, bob) == ("a.png", PNG_1)
    assert operators.background(staff, sue) == ("b.jpg", JPEG_1)
    with pytest.raises(ValidationError, match="not a PNG"):
        operators.set_background(staff, bob, tmp_path / "notes.txt")
    with pytest.raises(ValidationError, match="cannot read image"):
        operators.set_background(staff, bob, tmp_path / "missing.png")
    assert operators.background(staff, bob) == ("a.png", PNG_1)
    operators.set_background(staff, bob, tmp_path / "b.jpg")  # replaces, one row per operator
    assert operators.background(staff, bob) == ("b.jpg", JPEG_1)
    operators.clear_background(staff, bob)
    assert operators.background(staff, bob) is None
    assert operators.background(staff, sue) == ("b.jpg", JPEG_1)
