"""storage.precompiled: the sale's statements run straight on the driver give exactly what
SQLAlchemy's own execution gives, on SQLite and on PostgreSQL."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from dbmis_core.domain import VendState
from dbmis_core.services import audit, cards, tariffs, vending
from dbmis_core.storage.models import AuditRow, MeterReturnRow, StationRow, VendRow
from dbmis_core.storage.precompiled import Precompiled, run_batch
from dbmis_sim.meter import MeterSimulator


@pytest.fixture
def sold(demo, admin):
    """A customer whose second sale read meter data back from the card."""
    demo.reader.new_card()
    uid = cards.issue_user_card(demo, admin, "100001")
    first = vending.vend(demo, admin, "100001", "50.00")
    sim = MeterSimulator.provision(demo.config.home / "m.json", first.meter_no,
                                   demo.keys.meter_key(first.meter_no))
    with demo.reader.connect() as conn:
        sim.insert(conn, demo.card_format)
    sim.run(10, Decimal("2.50"))
    with demo.reader.connect() as conn:
        sim.insert(conn, demo.card_format)
    vending.vend(demo, admin, "100001", "20.00")
    return uid


def test_the_sale_context_reads_the_same_row_both_ways(demo, sold):
    params = {"uid": sold, "station_code": demo.config.station_code, **tariffs.lookup_params(demo)}
    with demo.uow() as uow:
        through_sqlalchemy = uow.connection.execute(vending._SALE_CONTEXT.stmt, params).one()
        direct = vending._SALE_CONTEXT.execute(uow.connection, params).one()
    assert tuple(direct) == tuple(through_sqlalchemy)
    assert direct._fields == tuple(through_sqlalchemy._fields)
    # the values came back typed: aware times, Decimal energy, booleans
    assert direct.latest_return.tzinfo is not None
    assert isinstance(direct.latest_cumulative, Decimal) and direct.has_open is False
    assert direct.last_sequence == 2


def test_latest_return_matches_and_a_missing_row_is_none(demo, sold):
    with demo.uow() as uow:
        meter_id = uow.session.scalar(select(VendRow.meter_id))
        params = {"meter_id": meter_id, "written_at": datetime.now(UTC) + timedelta(days=400)}
        a = uow.connection.execute(vending._LATEST_RETURN.stmt, params).first()
        b = vending._LATEST_RETURN.execute(uow.connection, params).first()
        assert tuple(a) == tuple(b) and b.written_at.tzinfo is not None
        params["written_at"] = datetime(2000, 1, 1, tzinfo=UTC)
        assert vending._LATEST_RETURN.execute(uow.connection, params).first() is None


def test_inserted_rows_read_back_as_sqlalchemy_wrote_them(demo, sold):
    """A vend row written directly and the same row written by SQLAlchemy read back equal."""
    with demo.uow() as uow:
        template = uow.session.scalars(select(VendRow).order_by(VendRow.id)).first()
        values = {k: getattr(template, k) for k in vending._INSERT_VEND.keys}
        values.update(state=VendState.FAILED.value, issued_at=datetime(2026, 5, 1, 8, 30, tzinfo=UTC))
        direct = vending._INSERT_VEND.execute(uow.connection, dict(values, receipt_no="X-1"))
        through = uow.connection.execute(vending._INSERT_VEND.stmt, dict(values, receipt_no="X-2"))
        ids = (direct.scalar_one(), through.scalar_one())
        rows = uow.connection.execute(select(VendRow.__table__).where(VendRow.id.in_(ids))
                                      .order_by(VendRow.id)).all()
    a, b = (r._asdict() for r in rows)
    for key in ("id", "receipt_no"):
        a.pop(key), b.pop(key)
    assert a == b
    assert a["price_lines"] == template.price_lines and a["amount"] == template.amount
    assert a["issued_at"] == datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


def test_updates_count_rows_and_returning_gives_typed_values(demo, sold):
    station = demo.config.station_code
    with demo.uow() as uow:
        ctx = vending._sale_context(uow, sold)
        before = uow.session.execute(select(StationRow.next_receipt, StationRow.audit_seq,
                                            StationRow.audit_head)
                                     .where(StationRow.code == station)).one()
        assert (ctx.next_receipt, ctx.audit_seq, ctx.audit_head) == tuple(before)
        assert isinstance(ctx.audit_head, str) and len(ctx.audit_head) == 64
        numbers = {"station_code": station, "receipt_was": ctx.next_receipt,
                   "audit_seq_was": ctx.audit_seq, "receipt_now": ctx.next_receipt + 1,
                   "audit_seq_now": ctx.audit_seq + 1, "audit_head_now": "h"}
        assert vending._STATION_NUMBERS.execute(uow.connection, numbers).rowcount == 1
        nobody = vending._CLAIM.execute(uow.connection, {"mid": -1, "prev": 0, "next_seq": 1})
        assert nobody.rowcount == 0 and nobody.rows == []
        uow.rollback()
    with demo.uow() as uow:  # numbers that moved since they were read are refused
        vending._sale_context(uow, sold)
        with pytest.raises(IntegrityError):
            vending._STATION_NUMBERS.execute(uow.connection, dict(numbers, receipt_was=1))


def test_driver_errors_are_sqlalchemy_errors_and_the_transaction_rolls_back(demo, sold):
    with demo.uow() as uow:
        receipt = uow.session.scalar(select(VendRow.receipt_no).order_by(VendRow.id))
        template = uow.session.scalars(select(VendRow)).first()
        values = {k: getattr(template, k) for k in vending._INSERT_VEND.keys}
    with demo.uow() as uow:
        with pytest.raises(IntegrityError):
            vending._INSERT_VEND.execute(uow.connection, dict(values, receipt_no=receipt))
    with demo.uow() as uow:
        assert uow.session.scalar(select(VendRow.id).where(VendRow.receipt_no == receipt))


def test_an_audit_record_written_directly_verifies(demo, admin, sold):
    """The audit chain's hash covers what the row holds, so the direct INSERT must store the
    details and the time exactly as SQLAlchemy would."""
    with demo.uow() as uow:
        audit.record(uow, admin, "test.direct", "chain", {"amount": Decimal("1.50"),
                                                          "when": datetime.now(UTC)})
        uow.commit()
    report = audit.verify(demo, admin)
    assert report.ok, report
    with demo.uow() as uow:
        row = uow.session.scalars(select(AuditRow).order_by(AuditRow.id.desc())).first()
    assert row.kind == "test.direct" and row.details["amount"] == "1.50"


def test_relaxed_statement_commits_on_its_own(demo, sold):
    with demo.uow() as uow:
        vid = uow.session.scalar(select(VendRow.id).order_by(VendRow.id.desc()))
    rename = Precompiled(update(VendRow).where(VendRow.id == bindparam("vid"))
                         .values(note=bindparam("note")))
    assert demo.relaxed_execute(rename, {"vid": vid, "note": "relaxed"}) == 1
    with demo.uow() as uow:
        assert uow.session.get(VendRow, vid).note == "relaxed"


def test_statements_it_cannot_run_are_refused_when_built(app):
    with app.uow() as uow:
        conn = uow.connection
        with pytest.raises(ValueError, match="IN list"):
            Precompiled(select(VendRow.id).where(VendRow.state.in_(["pending", "written"]))
                        ).execute(conn)
        with pytest.raises(ValueError, match="needs its value given"):
            Precompiled(insert(MeterReturnRow), keys=("meter_id",)).execute(conn, {"meter_id": 1})


def test_a_batch_runs_in_order_and_a_failure_keeps_what_came_before(demo, sold):
    """run_batch: one Result per statement in order; a failing statement raises its error with
    the Results before it, and the transaction it ran in rolls back as a whole."""
    note = Precompiled(update(VendRow).where(VendRow.id == bindparam("vid"))
                       .values(note=bindparam("note")).returning(VendRow.note))
    with demo.uow() as uow:
        first, second = uow.session.scalars(select(VendRow.id).order_by(VendRow.id)).all()[:2]
        template = uow.session.get(VendRow, first)
        values = {k: getattr(template, k) for k in vending._INSERT_VEND.keys}
    with demo.uow() as uow:
        a, b = run_batch(uow.connection, [(note, {"vid": first, "note": "one"}),
                                          (note, {"vid": second, "note": "two"})])
        assert a.one().note == "one" and b.one().note == "two"
        uow.commit()
    with demo.uow() as uow:
        with pytest.raises(IntegrityError) as failed:
            run_batch(uow.connection, [(note, {"vid": first, "note": "lost"}),
                                       (vending._INSERT_VEND, values),  # its receipt number again
                                       (note, {"vid": second, "note": "never"})])
        assert [r.rowcount for r in failed.value.batch_results] == [1]
    with demo.uow() as uow:  # committing in the batch: nothing of a failed one is kept
        with pytest.raises(IntegrityError) as failed:
            run_batch(uow.connection, [(note, {"vid": first, "note": "lost"}),
                                       (vending._INSERT_VEND, values)], commit=True)
        assert len(failed.value.batch_results) == 1
    with demo.engine.connect() as db:
        with demo.uow(connection=db) as uow:
            (done,) = run_batch(uow.connection, [(note, {"vid": second, "note": "three"})],
                                commit=True)
            assert done.rowcount == 1 and not db.in_transaction()
    with demo.uow() as uow:
        notes = uow.session.scalars(select(VendRow.note).where(VendRow.id.in_([first, second]))
                                    .order_by(VendRow.id)).all()
    assert notes == ["one", "three"]


def test_a_claim_from_a_stale_sequence_is_an_error(demo, sold):
    """The sale's claim fails loudly (so a batch stops before its COMMIT) when the meter's
    sequence is no longer the one read; the current one claims."""
    with demo.uow() as uow:
        meter_id, last = uow.session.execute(select(VendRow.meter_id, VendRow.sequence)
                                             .order_by(VendRow.id.desc())).first()
        with pytest.raises(IntegrityError):
            vending._CLAIM.execute(uow.connection, {"mid": meter_id, "prev": last - 1,
                                                    "next_seq": last})
    with demo.uow() as uow:
        assert vending._CLAIM.execute(uow.connection, {"mid": meter_id, "prev": last,
                                                       "next_seq": last + 1}).rowcount == 1
        uow.rollback()


def test_statements_dropped_by_the_server_are_prepared_again(demo, sold, backend):
    """A pooled PostgreSQL connection whose prepared statements someone deallocated (DEALLOCATE
    ALL, DISCARD ALL) prepares them again; a transaction that held only the batch is redone."""
    if backend != "postgres":
        pytest.skip("prepared statements are PostgreSQL's")
    with demo.engine.connect() as db:
        with demo.uow(connection=db) as uow:
            assert vending._sale_context(uow, sold).last_sequence == 2
            uow.commit()
        db.connection.driver_connection.execute("DEALLOCATE ALL")
        db.connection.driver_connection.commit()
        with demo.uow(connection=db) as uow:
            assert vending._sale_context(uow, sold).last_sequence == 2
            uow.commit()


def test_a_relaxed_statement_on_a_held_connection_is_a_transaction_of_its_own(demo, sold,
                                                                                backend):
    """The sale's COMPLETED runs on the connection the sale holds: committed on its own, a
    failure rolled back, and the connection left idle with its durable settings."""
    with demo.uow() as uow:
        first, second = uow.session.execute(select(VendRow.id, VendRow.receipt_no)
                                            .order_by(VendRow.id)).all()[:2]
    rename = Precompiled(update(VendRow).where(VendRow.id == bindparam("vid"))
                         .values(note=bindparam("note")))
    renumber = Precompiled(update(VendRow).where(VendRow.id == bindparam("vid"))
                           .values(receipt_no=bindparam("receipt")))
    with demo.engine.connect() as db:
        assert demo.relaxed_execute(rename, {"vid": first.id, "note": "held"}, db) == 1
        with demo.uow() as other:
            assert other.session.get(VendRow, first.id).note == "held"
        with pytest.raises(IntegrityError):
            demo.relaxed_execute(renumber, {"vid": first.id, "receipt": second.receipt_no}, db)
        with demo.uow(connection=db) as uow:
            assert vending._sale_context(uow, sold).last_sequence == 2
            uow.commit()
        if backend == "postgres":
            assert db.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
            db.rollback()
    with demo.uow() as uow:
        assert uow.session.get(VendRow, first.id).receipt_no == first.receipt_no


def test_without_pipeline_mode_statements_go_one_by_one_with_the_same_results(demo, sold,
                                                                             backend):
    """A libpq older than 14 has no pipeline mode: the same batches, one round trip each."""
    if backend != "postgres":
        pytest.skip("libpq is PostgreSQL's")
    from dbmis_core.storage.precompiled import _Libpq

    note = Precompiled(update(VendRow).where(VendRow.id == bindparam("vid"))
                       .values(note=bindparam("note")).returning(VendRow.note))
    with demo.engine.connect() as held:
        _Libpq.of(held.connection.driver_connection).pipeline = False
        with demo.uow(connection=held) as uow:
            assert vending._sale_context(uow, sold).last_sequence == 2
            first, second = uow.session.scalars(select(VendRow.id).order_by(VendRow.id)).all()[:2]
            receipt = uow.session.get(VendRow, first).receipt_no
            (done,) = run_batch(uow.connection, [(note, {"vid": first, "note": "one"})],
                                commit=True)
            assert done.one().note == "one"
        renumber = Precompiled(update(VendRow).where(VendRow.id == bindparam("vid"))
                               .values(receipt_no=bindparam("receipt")))
        with demo.uow(connection=held) as uow:
            with pytest.raises(IntegrityError) as failed:
                run_batch(uow.connection, [(note, {"vid": second, "note": "lost"}),
                                           (renumber, {"vid": second, "receipt": receipt})],
                          commit=True)
            assert len(failed.value.batch_results) == 1
        assert demo.relaxed_execute(note, {"vid": second, "note": "alone"}, held) == 1
    with demo.uow() as uow:
        assert uow.session.get(VendRow, first).note == "one"
        assert uow.session.get(VendRow, second).note == "alone"
