"""Audit log on both backends: the hash chain per station, triggers refusing changes, verification
finding records an attacker with database access altered, removed or reordered (triggers dropped,
raw SQL), concurrent appends, and the viewer's filters."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from dbmis_core.errors import PermissionDenied
from dbmis_core.services import audit
from dbmis_core.services.auth import create_operator
from dbmis_core.storage.models import AuditRow, StationRow


def _add(app, op, n, kind="customer.change", station=None):
    for i in range(n):
        with app.uow() as uow:
            audit.record(uow, op, kind, f"customer 10000{i}",
                         {"before": {"phone": f"0{i}"}, "after": {"phone": f"1{i}"},
                          "amount": Decimal("12.50")}, station=station)
            uow.commit()


def _station(app):
    return app.config.station_code


def _tamper(app, *statements):
    """What an attacker with database access does: drop the triggers, then rewrite rows."""
    with app.engine.begin() as c:
        if c.dialect.name == "postgresql":
            c.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        else:
            c.exec_driver_sql("DROP TRIGGER IF EXISTS trg_audit_log_no_update")
            c.exec_driver_sql("DROP TRIGGER IF EXISTS trg_audit_log_no_delete")
        for sql in statements:
            c.execute(text(sql))
        if c.dialect.name == "postgresql":
            c.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER USER")


def _problems(app, admin):
    res = audit.verify(app, admin)
    return [(f.seq, f.problem) for f in res.findings], res


def test_records_chain_per_station_and_verify(app, admin):
    _add(app, admin, 4)
    with app.uow() as uow:
        rows = list(uow.session.scalars(select(AuditRow).order_by(AuditRow.seq)))
        st = uow.session.scalar(select(StationRow).where(StationRow.code == _station(app)))
        assert [r.seq for r in rows] == [1, 2, 3, 4]
        assert rows[0].prev_hash == "" and all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:]))
        assert (st.audit_seq, st.audit_head) == (4, rows[-1].hash)
        assert rows[0].details["amount"] == "12.50"   # money as text, never a float
        assert rows[0].operator == admin.login and rows[0].at.tzinfo is not None
    res = audit.verify(app, admin)
    assert res.ok and res.chains[0].records == 4


def test_a_rolled_back_change_leaves_no_record_and_no_gap(app, admin):
    _add(app, admin, 1)
    with app.uow() as uow:
        audit.record(uow, admin, "sale", "receipt X")
    _add(app, admin, 1)
    with app.uow() as uow:
        assert list(uow.session.scalars(select(AuditRow.seq).order_by(AuditRow.seq))) == [1, 2]
    assert audit.verify(app, admin).ok


def test_triggers_refuse_update_and_delete(app, admin):
    _add(app, admin, 2)
    for sql in ("UPDATE audit_log SET subject = 'x' WHERE seq = 1",
                "DELETE FROM audit_log WHERE seq = 2"):
        with pytest.raises(DBAPIError, match="append only"):
            with app.engine.begin() as c:
                c.execute(text(sql))
    assert audit.verify(app, admin).ok


def test_altered_record_is_found(app, admin):
    _add(app, admin, 5)
    _tamper(app, "UPDATE audit_log SET details = '{\"after\": {\"phone\": \"99\"}}' WHERE seq = 3")
    problems, res = _problems(app, admin)
    assert problems == [(3, "altered")] and not res.ok


def test_altered_record_with_recomputed_hash_is_found(app, admin):
    _add(app, admin, 5)
    with app.uow() as uow:
        r = uow.session.scalar(select(AuditRow).where(AuditRow.seq == 3))
        forged = audit.chain_hash(r.prev_hash, r.station, 3, r.at, "someone", r.kind, r.subject,
                                  r.details)
    _tamper(app, f"UPDATE audit_log SET operator = 'someone', hash = '{forged}' WHERE seq = 3")
    assert _problems(app, admin)[0] == [(3, "altered")]


def test_removed_record_is_found(app, admin):
    _add(app, admin, 5)
    _tamper(app, "DELETE FROM audit_log WHERE seq = 2")
    problems, res = _problems(app, admin)
    assert problems == [(2, "removed")]
    assert "2 missing" in res.findings[0].detail


def test_removed_last_record_is_found_by_the_station_head(app, admin):
    _add(app, admin, 5)
    _tamper(app, "DELETE FROM audit_log WHERE seq = 5")
    problems, res = _problems(app, admin)
    assert problems == [(5, "removed")] and "end of the chain" in res.findings[0].detail


def test_removed_and_renumbered_records_are_found(app, admin):
    _add(app, admin, 5)
    _tamper(app, "DELETE FROM audit_log WHERE seq = 2",
            "UPDATE audit_log SET seq = seq - 1 WHERE seq > 2",
            f"UPDATE stations SET audit_seq = 4 WHERE code = '{_station(app)}'")
    problems, res = _problems(app, admin)
    assert (2, "removed") in problems
    assert (2, "reordered") in problems and (4, "reordered") in problems
    assert not any(p == "altered" for _, p in problems)


def test_reordered_records_are_found(app, admin):
    _add(app, admin, 5)
    _tamper(app, "UPDATE audit_log SET seq = 100 WHERE seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = 100")
    problems, res = _problems(app, admin)
    assert problems == [(2, "reordered"), (3, "reordered")]
    assert "written as record 3" in res.findings[0].detail


def test_a_record_appended_outside_the_program_is_found(app, admin):
    _add(app, admin, 2)
    with app.uow() as uow:
        last = uow.session.scalar(select(AuditRow).where(AuditRow.seq == 2))
        at = datetime.now(UTC)
        h = audit.chain_hash(last.hash, last.station, 3, at, "ghost", "sale", "x", {})
        uow.session.add(AuditRow(station=last.station, seq=3, at=at, operator="ghost", kind="sale",
                                 subject="x", details={}, prev_hash=last.hash, hash=h))
        uow.commit()
    assert _problems(app, admin)[0] == [(3, "head")]


def test_verify_needs_the_permission(app, admin):
    with app.uow() as uow:
        create_operator(uow, "bob", "Bob Clerk", "bobs-pass-1", "clerk")
        create_operator(uow, "aud", "Ann Auditor", "audit-pass-1", "auditor")
        uow.commit()
    with pytest.raises(PermissionDenied):
        audit.verify(app, app.login("bob", "bobs-pass-1"))
    assert audit.verify(app, app.login("aud", "audit-pass-1")).ok


def test_concurrent_appends_on_two_stations_number_without_gaps(app, admin):
    with app.uow() as uow:
        uow.session.add(StationRow(code="ST2", name="Second station", next_receipt=1))
        uow.commit()
    errors = []

    def worker(station):
        try:
            _add(app, admin, 15, "cash", station=station)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,))
               for s in (_station(app), _station(app), "ST2", "ST2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    res = audit.verify(app, admin)
    assert res.ok, res.findings
    assert sorted((c.station, c.records) for c in res.chains) == sorted(
        [(_station(app), 30), ("ST2", 30)])
    with app.uow() as uow:
        seqs = list(uow.session.scalars(select(AuditRow.seq).where(AuditRow.station == "ST2")
                                        .order_by(AuditRow.seq)))
    assert seqs == list(range(1, 31))


def test_search_filters(app, admin):
    with app.uow() as uow:
        create_operator(uow, "bob", "Bob Clerk", "bobs-pass-1", "clerk")
        uow.commit()
    _add(app, admin, 2, "customer.change")
    with app.uow() as uow:
        audit.record(uow, "bob", "card.issue", "card 04AABB", {"account": "100001"})
        audit.record(uow, "bob", "sale", "receipt MAIN-00000001", {"amount": "10.00"})
        uow.commit()
    everything = audit.search(app, admin)
    assert [e.kind for e in everything][:2] == ["sale", "card.issue"]  # newest first
    assert {e.kind for e in audit.search(app, admin, operator="bob")} == {"card.issue", "sale"}
    assert [e.subject for e in audit.search(app, admin, kind="card")] == ["card 04AABB"]
    assert len(audit.search(app, admin, kind="customer.change")) == 2
    assert [e.kind for e in audit.search(app, admin, subject="04aabb")] == ["card.issue"]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert audit.search(app, admin, since=future) == []
    assert len(audit.search(app, admin, until=future)) == 4
    assert audit.kinds(app, admin) == ["card.issue", "customer.change", "sale"]


def test_every_kind_of_change_leaves_a_record(demo, admin):
    """A representative operation of each instrumented service, then the records and the chain."""
    from dbmis_core.services import (
        applications,
        backup,
        cards,
        cardtools,
        customers,
        dayclose,
        debts,
        operators,
        reissue,
        reversal,
        tariffs,
        vending,
    )
    from dbmis_core.errors import AuthenticationError

    clerk = demo.login("clerk", "clerk-demo-1")
    demo.reader.new_card()
    uid = cards.issue_user_card(demo, admin, "100001")
    sale = vending.vend(demo, clerk, "100001", "30.00")
    reversal.reverse_sale(demo, admin, sale.vend_id, "typed wrong")
    debts.add_debt(demo, admin, "100002", "inspection fee", "5.00")
    debts.pay_debt(demo, clerk, "100002", "5.00")
    customers.change_customer(demo, admin, "100003", phone="0700 000 001")
    operators.add_operator(demo, admin, "newbie", "New Clerk", "clerk", "temp-pass-123")
    with pytest.raises(AuthenticationError):
        demo.login("newbie", "wrong-pass-123")
    operators.reset_password(demo, admin, "newbie", "temp-pass-456")
    tariffs.add_version(demo, admin, "flat", {"residential": "0.6000"},
                        datetime.now(UTC) + timedelta(days=1))
    dayclose.close(demo, clerk, "5.00")
    demo.reader.new_card()
    reissue.reissue_card(demo, admin, "100001", fee="0", reason="lost")
    applications.new_application(demo, admin, applications.Applicant(
        "Rosa Park", "5 Elm Street", "555-0199", "residential", "32"))
    demo.reader.new_card()
    cardtools.write_service_card(demo, admin, "test")
    backup.rotate_key(demo, admin)

    expected = [
        ("card.issue", "admin", "account 100001"),
        ("sale", "clerk", "account 100001"),
        ("reversal.request", "admin", sale.receipt_no),
        ("reversal", "admin", sale.receipt_no),
        ("cash", "admin", "account 100001"),          # the refund
        ("debt.add", "admin", "account 100002"),
        ("cash", "clerk", "account 100002"),          # the debt payment
        ("customer.change", "admin", "account 100003"),
        ("operator.created", "admin", "operator newbie"),
        ("operator.login_failed", "system", "operator newbie"),
        ("operator.password_reset", "admin", "operator newbie"),
        ("tariff.version", "admin", "tariff flat"),
        ("dayclose", "clerk", "operator clerk"),
        ("reissue.request", "admin", "account 100001"),
        ("reissue", "admin", "account 100001"),
        ("application.step", "admin", "application "),
        ("card.service", "admin", "card "),
        ("key.rotate", "admin", "card master secret"),
    ]
    records = list(reversed(audit.search(demo, admin, limit=10_000)))
    seen = [(e.kind, e.operator, e.subject) for e in records]
    for kind, who, subject in expected:
        assert any(k == kind and o == who and s.startswith(subject) for k, o, s in seen), (
            kind, who, subject, seen[-30:])
    sale_rec = next(e for e in records if e.kind == "sale")
    assert sale_rec.details["receipt"] == sale.receipt_no and sale_rec.details["amount"] == "30.00"
    assert sale_rec.details["card"] == uid
    change = next(e for e in records if e.kind == "customer.change")
    assert change.details["after"] == {"phone": "0700 000 001"} and "phone" in change.details["before"]
    assert not any("pass" in str(e.details).lower() for e in records
                   if e.kind.startswith("operator."))
    res = audit.verify(demo, admin)
    assert res.ok, res.findings
