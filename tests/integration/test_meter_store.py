"""The meter store: status changes with history, events of installation and replacement, and the
all-or-nothing batch import from CSV and XLSX (both backends)."""

from __future__ import annotations

import csv

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from dbmis_core.errors import BusinessRuleError, PermissionDenied, ValidationError
from dbmis_core.services import audit, cards, customers, meterstore
from dbmis_core.services.auth import Operator
from dbmis_core.storage.models import MeterEventRow, MeterRow

TECH = Operator("tom", "Tom Technician", "technician")
CLERK = Operator("clerk", "Demo Clerk", "clerk")
STORE = "000020249001"


def meters_count(app) -> int:
    with app.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(MeterRow))


def test_status_changes_follow_the_allowed_transitions_and_keep_history(demo, admin):
    meterstore.change_status(demo, TECH, STORE, "under_test", "bench test")
    meterstore.change_status(demo, TECH, STORE, "faulty", "display dead")
    with pytest.raises(BusinessRuleError, match="cannot go from faulty to in_store"):
        meterstore.change_status(demo, TECH, STORE, "in_store")
    meterstore.change_status(demo, TECH, STORE, "scrapped")
    with pytest.raises(BusinessRuleError, match="none \\(final\\)"):
        meterstore.change_status(demo, TECH, STORE, "under_test")
    with pytest.raises(BusinessRuleError, match="is installed: replace"):
        meterstore.change_status(demo, TECH, "000020240001", "faulty")
    with pytest.raises(BusinessRuleError, match="not by a status change"):
        meterstore.change_status(demo, TECH, "000020249002", "installed")
    with pytest.raises(ValidationError, match="unknown meter status 'broken'"):
        meterstore.change_status(demo, TECH, "000020249002", "broken")
    with pytest.raises(PermissionDenied):
        meterstore.change_status(demo, CLERK, "000020249002", "faulty")
    steps = [(e.from_status, e.to_status, e.kind, e.note)
             for e in meterstore.history(demo, TECH, STORE)]
    assert steps == [(None, "in_store", "add", ""),
                     ("in_store", "under_test", "status", "bench test"),
                     ("under_test", "faulty", "status", "display dead"),
                     ("faulty", "scrapped", "status", "")]
    assert [m.meter_no for m in meterstore.list_meters(demo, CLERK, status="in_store")] == [
        "000020249002", "000020249003"]
    assert [m.meter_no for m in meterstore.list_meters(demo, CLERK, status="scrapped")] == [STORE]
    recs = [r.details for r in audit.search(demo, admin, kind="meter.status")]
    assert {"before": "faulty", "after": "scrapped", "note": ""} in recs


def test_installation_and_replacement_are_in_the_history(demo, admin):
    hist = meterstore.history(demo, admin, "000020240001")
    assert [(e.from_status, e.to_status, e.kind) for e in hist] == [
        (None, "in_store", "add"), ("in_store", "installed", "install")]
    assert hist[1].note == "customer 100001"
    demo.reader.new_card()
    cards.issue_user_card(demo, admin, "100001")
    demo.reader.new_card()
    customers.replace_meter(demo, admin, "100001", STORE)
    old = meterstore.history(demo, admin, "000020240001")[-1]
    new = meterstore.history(demo, admin, STORE)[-1]
    assert (old.from_status, old.to_status, old.kind) == ("installed", "removed", "replace")
    assert (new.from_status, new.to_status, new.kind) == ("in_store", "installed", "replace")
    # a removed meter goes back to the store after a check
    meterstore.change_status(demo, TECH, "000020240001", "under_test")
    meterstore.change_status(demo, TECH, "000020240001", "in_store")
    assert meterstore.list_meters(demo, TECH, text="000020240001")[0].status == "in_store"


def _rows(n=50, bad=None):
    rows = [["meter_no", "model", "note"]]
    for i in range(n):
        rows.append([f"{30000001 + i:012d}", "DDSY-1P" if i % 2 else "DTSY-3P", f"box {i // 10}"])
    if bad:
        bad(rows)
    return rows


def _csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def _xlsx(path, rows):
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


@pytest.mark.parametrize("write", [_csv, _xlsx], ids=["csv", "xlsx"])
def test_a_clean_file_is_imported_with_history_and_audit(demo, admin, tmp_path, write):
    path = write(tmp_path / f"batch.{write.__name__[1:]}", _rows())
    before = meters_count(demo)
    dry = meterstore.import_meters(demo, TECH, path, dry_run=True)
    assert (dry.ok, dry.rows, dry.added) == (True, 50, ())
    assert meters_count(demo) == before
    rep = meterstore.import_meters(demo, TECH, path)
    assert rep.ok and len(rep.added) == 50 and meters_count(demo) == before + 50
    ev = meterstore.history(demo, TECH, "000030000050")
    assert [(e.to_status, e.kind) for e in ev] == [("in_store", "import")]
    assert ev[0].note == f"{path.name} row 51: box 4"
    rec = audit.search(demo, admin, kind="meter.import")[0]
    assert rec.details["count"] == 50 and rec.subject == path.name
    again = meterstore.import_meters(demo, TECH, path)
    assert len(again.errors) == 50 and {e.reason for e in again.errors} == {"already registered"}


BAD_ROWS = {
    "format": (lambda rows: rows[17].__setitem__(0, "12AB45"), 18, "meter_no",
               "bad meter number format"),
    "model": (lambda rows: rows[30].__setitem__(1, "NOPE-9"), 31, "model", "unknown meter model"),
    "duplicate": (lambda rows: rows[44].__setitem__(0, rows[3][0]), 45, "meter_no",
                  "duplicate in the file (first on row 4)"),
    "registered": (lambda rows: rows[50].__setitem__(0, "000020240003"), 51, "meter_no",
                   "already registered"),
}


@pytest.mark.parametrize("write", [_csv, _xlsx], ids=["csv", "xlsx"])
@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_one_bad_row_among_50_writes_nothing_and_is_reported(demo, admin, tmp_path, write, case):
    bad, row, column, reason = BAD_ROWS[case]
    path = write(tmp_path / f"batch.{write.__name__[1:]}", _rows(bad=bad))
    before = meters_count(demo)
    with demo.uow() as uow:
        events = uow.session.scalar(select(func.count()).select_from(MeterEventRow))
    rep = meterstore.import_meters(demo, TECH, path)
    assert not rep.ok and rep.added == ()
    assert [(e.row, e.column) for e in rep.errors] == [(row, column)]
    assert rep.errors[0].reason.startswith(reason)
    assert meters_count(demo) == before
    with demo.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(MeterEventRow)) == events
    assert audit.search(demo, admin, kind="meter.import") == []


def test_missing_column_and_wrong_file_type(demo, tmp_path):
    rep = meterstore.import_meters(demo, TECH, _csv(tmp_path / "x.csv", [["number", "model"],
                                                                        ["000040000001", "DDSY-1P"]]))
    assert [(e.row, e.column) for e in rep.errors] == [(1, "meter_no")]
    with pytest.raises(ValidationError, match="takes a .csv or .xlsx"):
        meterstore.import_meters(demo, TECH, tmp_path / "x.pdf")
    (tmp_path / "broken.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(ValidationError, match="not a readable XLSX"):
        meterstore.import_meters(demo, TECH, tmp_path / "broken.xlsx")
    with pytest.raises(PermissionDenied):
        meterstore.import_meters(demo, CLERK, tmp_path / "x.csv")
