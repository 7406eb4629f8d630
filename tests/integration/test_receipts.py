"""Receipts and invoices, and the gapless receipt register, on SQLite and PostgreSQL."""

import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from dbmis_core.errors import BusinessRuleError, CardError, NotFound, ValidationError
from dbmis_core.services import cards, receipts, vending
from dbmis_core.services.cash import record_cash
from dbmis_core.storage.models import CashEntryRow, CustomerRow, StationRow, VendRow
from dbmis_sim.sle4442 import Faults


def _issue(app, op, account):
    uid = app.reader.new_card()
    cards.issue_user_card(app, op, account)
    return uid


def _cash(app, op, kind, amount, account=None, vend_id=None, note=""):
    with app.uow() as uow:
        cid = None
        if account:
            cid = uow.session.scalar(select(CustomerRow.id).where(CustomerRow.account_no == account))
        row = record_cash(uow, op, app.config.station_code, kind, Decimal(amount), customer_id=cid,
                          vend_id=vend_id, note=note)
        uow.commit()
        return row.receipt_no


def _next_receipt(app):
    with app.uow() as uow:
        return uow.session.scalar(select(StationRow.next_receipt).where(StationRow.code == "S01"))


def _mixed_day(app, op):
    """Completed sales, a failed one (card pulled mid-write, then reconciled), a pending one and
    cash entries, in that order: numbers 1..7."""
    _issue(app, op, "100001")
    s1 = vending.vend(app, op, "100001", "20.00")                      # 1 completed
    fee = _cash(app, op, "reissue_fee", "5.00", "100001")              # 2 cash
    uid2 = _issue(app, op, "100002")
    app.reader.inject(Faults(pull_after_bytes=10))
    with pytest.raises(CardError, match="pending"):
        vending.vend(app, op, "100002", "30.00")                       # 3 pending ...
    app.reader.insert(uid2)
    assert [s for _, s in vending.reconcile_card_in_reader(app, op)] == ["failed"]  # ... void
    _issue(app, op, "100003")
    s4 = vending.vend(app, op, "100003", "15.00")                      # 4 completed
    refund = _cash(app, op, "refund", "-2.50", "100003", note="overpaid")  # 5 cash
    _issue(app, op, "100004")
    app.reader.inject(Faults(pull_after_bytes=10))
    with pytest.raises(CardError):
        vending.vend(app, op, "100004", "12.00")                       # 6 stays pending
    debt = _cash(app, op, "debt_payment", "7.00", "100004")            # 7 cash
    return SimpleNamespace(s1=s1, fee=fee, s4=s4, refund=refund, debt=debt)


def test_register_accounts_for_every_number_once(demo, admin):
    day = _mixed_day(demo, admin)
    reg = receipts.receipt_register(demo, admin)
    assert reg.ok, reg.problems
    assert reg.next_number == 8 == _next_receipt(demo)
    assert [(line.number, line.what) for line in reg.lines] == [
        (1, "sale completed"), (2, "cash reissue_fee"), (3, "sale void (failed)"),
        (4, "sale completed"), (5, "cash refund"), (6, "sale pending"), (7, "cash debt_payment")]
    assert [line.receipt_no for line in reg.lines] == [f"S01-{n:08d}" for n in range(1, 8)]
    assert reg.lines[0].receipt_no == day.s1.receipt_no and reg.lines[4].amount == Decimal("-2.50")
    assert receipts.check_register(reg.lines, reg.next_number, "S01") == []
    assert [line.number for line in receipts.receipt_register(demo, admin, first=3, last=4).lines] \
        == [3, 4]


def test_register_check_finds_gaps_duplicates_and_strays(demo, admin):
    _issue(demo, admin, "100001")
    sale = vending.vend(demo, admin, "100001", "20.00")
    _cash(demo, admin, "other", "1.00")
    with demo.uow() as uow:  # a number lost (counter moved without a record) ...
        uow.session.execute(update(StationRow).where(StationRow.code == "S01")
                            .values(next_receipt=StationRow.next_receipt + 1))
        uow.commit()
    with demo.uow() as uow:  # ... a cash entry that reuses the sale's number, one beyond the counter
        uow.session.add_all([
            CashEntryRow(kind="other", amount=Decimal("1.00"), operator="admin", station="S01",
                         receipt_no=sale.receipt_no),
            CashEntryRow(kind="other", amount=Decimal("1.00"), operator="admin", station="S01",
                         receipt_no="S01-00000099")])
        uow.commit()
    reg = receipts.receipt_register(demo, admin)
    assert not reg.ok
    problems = "\n".join(reg.problems)
    assert "gap: receipt S01-00000003" in problems
    assert re.search(r"duplicate: receipt S01-00000001 is used by sale \d+ and cash \d+", problems)
    assert "out of range" in problems and "S01-00000099" in problems
    assert [line.what for line in reg.lines if line.number == 3] == ["MISSING"]


def test_unknown_station_is_refused(demo, admin):
    with pytest.raises(NotFound, match="station S99"):
        receipts.receipt_register(demo, admin, station="S99")


def test_reprint_is_a_copy_with_the_same_number_and_no_new_one(demo, admin, artifacts_dir):
    _issue(demo, admin, "100001")
    sale = vending.vend(demo, admin, "100001", "20.00")
    before = _next_receipt(demo)
    copy = receipts.receipt_text(demo, admin, sale.receipt_no, copy=True)
    original = receipts.receipt_text(demo, admin, sale.receipt_no)
    assert _next_receipt(demo) == before
    assert "*** COPY ***" in copy and "COPY" not in original
    assert f"Receipt no : {sale.receipt_no}" in copy
    assert "COPY" not in sale.receipt_text and sale.receipt_no in sale.receipt_text
    assert "12 Elm Street" in copy and "Li Wei" in copy and "AMOUNT PAID" in copy
    pdf = receipts.receipt_pdf(demo, admin, sale.receipt_no, copy=True)
    assert pdf.startswith(b"%PDF") and b"/MediaBox [0 0 226.77" in pdf  # 80 mm roll
    assert _next_receipt(demo) == before
    with open(f"{artifacts_dir}/receipt-copy.txt", "w", encoding="utf-8") as f:
        f.write(copy)


def test_no_line_is_wider_than_the_printer_even_with_long_texts(demo, admin):
    long_name = "Guangzhou Consolidated Agricultural Irrigation Cooperative " * 2
    long_addr = ("Building 17, Unit 4, Extraordinarily-Long-Named Industrial Development Zone "
                 "Road, Eastern District, Province of Somewhere Far Away, 510000") * 2
    with demo.uow() as uow:
        c = uow.session.scalar(select(CustomerRow).where(CustomerRow.account_no == "100001"))
        c.name, c.address = long_name[:120], long_addr[:255]
        uow.commit()
    _issue(demo, admin, "100001")
    sale = vending.vend(demo, admin, "100001", "20.00")
    with demo.uow() as uow:  # a tariff that itemises a surcharge with a long description
        v = uow.session.get(VendRow, sale.vend_id)
        v.price_lines = [["Energy charge", "18.00"],
                         ["Rural electrification and street lighting surcharge (2 %)", "2.00"]]
        uow.commit()
    fee = _cash(demo, admin, "reissue_fee", "5.00", "100001", note="card lost; " + long_addr[:200])
    for text in (sale.receipt_text, receipts.receipt_text(demo, admin, sale.receipt_no, copy=True),
                 receipts.receipt_text(demo, admin, fee, copy=True)):
        widest = max(text.splitlines(), key=len)
        assert len(widest) <= receipts.WIDTH, widest
        squashed = "".join(text.split())
        assert "".join(long_name[:120].split()) in squashed  # wrapped, not cut
    copy = receipts.receipt_text(demo, admin, sale.receipt_no, copy=True)
    assert "surcharge" in copy and re.search(r"\(2 %\)\s+2\.00$", copy, re.M)


def test_layout_helpers_wrap_instead_of_overflowing():
    assert all(len(x) <= 42 for x in receipts._field("Name", "x" * 100).splitlines())
    assert receipts._amount_line("AMOUNT PAID", "20.00") == "AMOUNT PAID" + " " * 26 + "20.00"
    assert receipts._fit("y" * 90) == "y" * 42 + "\n" + "y" * 42 + "\n" + "y" * 6 + "\n"


def test_pending_and_failed_sales_do_not_print(demo, admin):
    _mixed_day(demo, admin)
    with pytest.raises(BusinessRuleError, match="still pending: reconcile"):
        receipts.receipt_text(demo, admin, "S01-00000006", copy=True)
    with pytest.raises(BusinessRuleError, match="void"):
        receipts.receipt_text(demo, admin, "S01-00000003", copy=True)
    with pytest.raises(BusinessRuleError, match="void"):
        receipts.invoice_pdf(demo, admin, "S01-00000003")
    with pytest.raises(NotFound, match="S01-00000042"):
        receipts.receipt_text(demo, admin, "S01-00000042")
    with pytest.raises(ValidationError):
        receipts.receipt_text(demo, admin, "  ")


def test_cash_entries_have_receipts_too(demo, admin):
    day = _mixed_day(demo, admin)
    fee = receipts.receipt_text(demo, admin, day.fee, copy=True)
    assert "CARD REPLACEMENT FEE" in fee and "AMOUNT RECEIVED" in fee and "5.00" in fee
    assert "*** COPY ***" in fee and f"Receipt no : {day.fee}" in fee and "Li Wei" in fee
    refund = receipts.receipt_text(demo, admin, day.refund)
    assert "REFUND" in refund and re.search(r"AMOUNT PAID OUT\s+2\.50$", refund, re.M)
    assert "overpaid" in refund
    assert receipts.receipt_pdf(demo, admin, day.debt).startswith(b"%PDF")
    with pytest.raises(ValidationError, match="cash entry"):
        receipts.invoice_pdf(demo, admin, day.fee)


def test_invoice_lists_customer_meter_energy_and_each_price_line(demo, admin, artifacts_dir):
    _issue(demo, admin, "100003")
    sale = vending.vend(demo, admin, "100003", "40.00")
    with demo.uow() as uow:
        v = uow.session.get(VendRow, sale.vend_id)
        v.price_lines = [["Energy charge", "36.00"], ["Peak surcharge", "3.00"],
                         ["Meter rent", "1.00"]]
        v.customer.name = "Green & <Grocer> Ltd"
        uow.commit()
    before = _next_receipt(demo)
    html = receipts.invoice_html(demo, admin, sale.receipt_no, copy=True)
    for expected in ("Demo", sale.receipt_no, "100003", "Green &amp; &lt;Grocer&gt; Ltd",
                     sale.meter_no, f"{sale.energy} kWh", "<td>Peak surcharge</td>",
                     "<td>Meter rent</td>", "<td>Energy charge</td>", "40.00", "COPY"):
        assert expected in html, expected
    pdf = receipts.invoice_pdf(demo, admin, sale.receipt_no)
    assert pdf.startswith(b"%PDF") and b"/MediaBox [0 0 595.28 841.89]" in pdf  # A4
    assert _next_receipt(demo) == before
    with open(f"{artifacts_dir}/invoice.pdf", "wb") as f:
        f.write(pdf)
