"""New-service applications on SQLite and PostgreSQL: the whole way to an opened account with a
card, refused moves that change nothing, withdrawals, the meter store, batches, numbering under
concurrency and the printable form."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dbmis_core.app import Application
from dbmis_core.config import Config
from dbmis_core.domain import MeterStatus
from dbmis_core.errors import BusinessRuleError, NotFound, PermissionDenied, ValidationError
from dbmis_core.services import applications as A
from dbmis_core.services import auth, cards
from dbmis_core.storage.models import (
    ApplicationRow,
    ApplicationStepRow,
    CardRow,
    CustomerRow,
    MeterRow,
)

SETTINGS = A.BatchSettings(model_code="DDSY-1P", capacity_mode="trip", tariff="flat",
                           district_code="R1-L1-T1")
STORE = ["000020249001", "000020249002", "000020249003"]


@pytest.fixture
def clerk(demo):
    return demo.login("clerk", "clerk-demo-1")


def rosa(**kw):
    return A.Applicant(kw.get("name", "Rosa Park"), "5 Elm Street", "555-0199", "residential",
                       kw.get("amps", "32"))


def counts(app) -> tuple[int, int, int]:
    with app.uow() as uow:
        s = uow.session
        return (s.scalar(select(func.count()).select_from(ApplicationRow)),
                s.scalar(select(func.count()).select_from(ApplicationStepRow)),
                s.scalar(select(func.count()).select_from(CustomerRow)))


def meter_row(app, meter_no):
    with app.uow() as uow:
        m = uow.session.scalar(select(MeterRow).where(MeterRow.meter_no == meter_no))
        return m.status, (m.customer.account_no if m.customer else None)


def to_installed(app, op, applicant=None, meter_no=None):
    a = A.new_application(app, op, applicant or rosa(), SETTINGS, notes="counter")
    A.survey(app, op, a.number, "pole 20 m away, line has capacity")
    A.approve(app, op, a.number, "ok")
    A.assign_meter(app, op, a.number, meter_no)
    return A.install(app, op, a.number, "sealed")


def test_whole_application_to_an_opened_account_with_a_card(demo, clerk):
    a = A.new_application(demo, clerk, rosa(), SETTINGS, notes="came to the counter")
    assert a.number == f"S01-{a.created_at.year}-00001" and a.state == "received"
    assert a.next_action == "survey"
    a = A.survey(demo, clerk, a.number, "pole 20 m away")
    a = A.approve(demo, clerk, a.number)
    a = A.assign_meter(demo, clerk, a.number)
    assert a.state == "meter_assigned" and a.meter_no == STORE[0]
    assert meter_row(demo, STORE[0]) == (MeterStatus.IN_STORE, None)  # reserved, still in store
    a = A.install(demo, clerk, a.number, "sealed 0042")
    assert meter_row(demo, STORE[0]) == (MeterStatus.INSTALLED, None)
    demo.reader.new_card()
    a = A.advance(demo, clerk, a.number, "open")
    assert a.state == "opened" and a.account_no == "100007" and a.card_uid
    assert meter_row(demo, STORE[0]) == (MeterStatus.INSTALLED, "100007")
    with demo.uow() as uow:
        c = uow.session.scalar(select(CustomerRow).where(CustomerRow.account_no == "100007"))
        assert (c.name, c.address, c.phone, c.category, c.district.code) == (
            "Rosa Park", "5 Elm Street", "555-0199", "residential", "R1-L1-T1")
        assert (c.tariff, c.capacity_mode, c.capacity_amps) == ("flat", "trip", Decimal("32.00"))
        card = uow.session.scalar(select(CardRow).where(CardRow.customer_id == c.id))
        assert (card.uid, card.meter.meter_no, card.issued_by) == (a.card_uid, STORE[0], "clerk")
    a = A.complete(demo, clerk, a.number, "file closed")
    assert a.state == "completed" and a.next_action is None
    assert [(s.state, s.operator) for s in a.steps] == [
        (st, "clerk") for st in ("received", "surveyed", "approved", "meter_assigned",
                                 "installed", "opened", "completed")]
    notes = [s.notes for s in a.steps]
    assert notes[0] == "came to the counter" and notes[1] == "pole 20 m away"
    assert notes[3] == f"meter {STORE[0]}" and notes[5] == f"account 100007, card {a.card_uid}"
    assert all(s.at.tzinfo is not None for s in a.steps)


def test_wrong_moves_are_refused_and_change_nothing(demo, clerk):
    a = A.new_application(demo, clerk, rosa(), SETTINGS)
    before = counts(demo)
    for action in ("approve", "assign-meter", "install", "open", "complete"):
        with pytest.raises(BusinessRuleError, match=f"is received: cannot {action} .*next step is "
                                                    "survey"):
            A.advance(demo, clerk, a.number, action)
    with pytest.raises(ValidationError, match="unknown step"):
        A.advance(demo, clerk, a.number, "fly")
    with pytest.raises(NotFound):
        A.survey(demo, clerk, "S01-1999-00009")
    assert counts(demo) == before
    shown = A.get_application(demo, clerk, a.number)
    assert shown.state == "received" and len(shown.steps) == 1
    A.survey(demo, clerk, a.number)
    with pytest.raises(BusinessRuleError, match="is surveyed: cannot survey"):
        A.survey(demo, clerk, a.number)
    # approving without a meter model is refused and keeps the application surveyed
    b = A.new_application(demo, clerk, rosa(name="No Model"))
    A.survey(demo, clerk, b.number)
    with pytest.raises(BusinessRuleError, match="names no meter model"):
        A.approve(demo, clerk, b.number)
    assert A.get_application(demo, clerk, b.number).state == "surveyed"
    with pytest.raises(ValidationError, match="unknown meter model"):
        A.approve(demo, clerk, b.number, settings=A.BatchSettings(model_code="NOPE"))
    b = A.approve(demo, clerk, b.number, settings=A.BatchSettings(model_code="DTSY-3P"))
    assert b.model_code == "DTSY-3P" and b.state == "approved"
    with pytest.raises(BusinessRuleError, match="no free DTSY-3P meter"):
        A.assign_meter(demo, clerk, b.number)
    assert A.get_application(demo, clerk, b.number).state == "approved"


def test_bad_input_is_refused(demo, clerk):
    before = counts(demo)
    with pytest.raises(ValidationError, match="name must not be empty"):
        A.new_application(demo, clerk, A.Applicant("  "))
    with pytest.raises(ValidationError, match="unknown category"):
        A.new_application(demo, clerk, A.Applicant("X", category="palace"))
    with pytest.raises(ValidationError, match="float"):
        A.new_application(demo, clerk, A.Applicant("X", requested_amps=32.5))
    with pytest.raises(ValidationError, match="not a transformer district"):
        A.new_application(demo, clerk, rosa(), A.BatchSettings(district_code="R1"))
    with pytest.raises(ValidationError, match="capacity-limit mode"):
        A.new_application(demo, clerk, rosa(), A.BatchSettings(capacity_mode="maybe"))
    with pytest.raises(ValidationError, match="unknown tariff"):
        A.new_application(demo, clerk, rosa(), A.BatchSettings(tariff="free-beer"))
    assert counts(demo) == before


def test_meters_are_reserved_and_checked(demo, clerk):
    a = A.new_application(demo, clerk, rosa(), SETTINGS)
    b = A.new_application(demo, clerk, rosa(name="Tom Hill"), SETTINGS)
    for x in (a, b):
        A.survey(demo, clerk, x.number)
        A.approve(demo, clerk, x.number)
    A.assign_meter(demo, clerk, a.number, STORE[1])
    with pytest.raises(BusinessRuleError, match=f"already assigned to application {a.number}"):
        A.assign_meter(demo, clerk, b.number, STORE[1])
    with pytest.raises(BusinessRuleError, match="is installed, not in the store"):
        A.assign_meter(demo, clerk, b.number, "000020240001")
    with pytest.raises(NotFound):
        A.assign_meter(demo, clerk, b.number, "000099999999")
    assert A.get_application(demo, clerk, b.number).state == "approved"
    assert A.assign_meter(demo, clerk, b.number).meter_no == STORE[0]  # first free one


def test_reject_and_cancel_need_a_reason_and_release_the_meter(demo, clerk):
    a = to_installed(demo, clerk)
    assert meter_row(demo, a.meter_no) == (MeterStatus.INSTALLED, None)
    with pytest.raises(ValidationError, match="reason"):
        A.cancel(demo, clerk, a.number, " ")
    a = A.cancel(demo, clerk, a.number, "applicant moved away")
    assert a.state == "cancelled" and a.steps[-1].notes == "applicant moved away"
    assert meter_row(demo, a.meter_no) == (MeterStatus.IN_STORE, None)
    before = counts(demo)
    with pytest.raises(BusinessRuleError, match="is cancelled and cannot be rejected"):
        A.reject(demo, clerk, a.number, "too late")
    with pytest.raises(BusinessRuleError, match="is cancelled: cannot survey"):
        A.survey(demo, clerk, a.number)
    assert counts(demo) == before
    # the released meter is free for the next applicant
    b = to_installed(demo, clerk, rosa(name="Tom Hill"), meter_no=a.meter_no)
    assert b.meter_no == a.meter_no
    c = A.new_application(demo, clerk, rosa(name="Far Away"), SETTINGS)
    c = A.reject(demo, clerk, c.number, "no line within 2 km")
    assert c.state == "rejected" and [s.state for s in c.steps] == ["received", "rejected"]
    demo.reader.new_card()
    A.advance(demo, clerk, b.number, "open")
    with pytest.raises(BusinessRuleError, match="the account is open"):
        A.cancel(demo, clerk, b.number, "changed mind")
    assert A.get_application(demo, clerk, b.number).state == "opened"


def test_opening_resumes_when_the_card_could_not_be_written(demo, clerk):
    a = to_installed(demo, clerk)
    demo.reader.new_card()
    cards.issue_user_card(demo, clerk, "100001")  # the card in the reader is no longer blank
    with pytest.raises(ValidationError, match="insert a blank card"):
        A.advance(demo, clerk, a.number, "open")
    shown = A.get_application(demo, clerk, a.number)
    assert shown.state == "installed" and shown.account_no == "100007" and shown.card_uid is None
    n_customers = counts(demo)[2]
    demo.reader.new_card()
    a = A.advance(demo, clerk, a.number, "open")
    assert a.state == "opened" and a.account_no == "100007" and a.card_uid
    assert counts(demo)[2] == n_customers  # the customer was not created twice


def test_given_account_number_and_taken_account_number(demo, clerk):
    a = to_installed(demo, clerk)
    demo.reader.new_card()
    with pytest.raises(ValidationError, match="already in use"):
        A.open_account(demo, clerk, a.number, account_no="100001")
    assert A.get_application(demo, clerk, a.number).account_no is None
    a = A.open_account(demo, clerk, a.number, account_no="550001")
    assert a.account_no == "550001" and a.state == "opened"


def test_permission(demo, clerk):
    with demo.uow() as uow:
        auth.create_operator(uow, "tom", "Tom Technician", "tech-pass-1", "technician")
        auth.create_operator(uow, "ann", "Ann Auditor", "audit-pass-1", "auditor")
        auth.create_operator(uow, "sue", "Sue Supervisor", "super-pass-1", "supervisor")
        uow.commit()
    tom, ann = demo.login("tom", "tech-pass-1"), demo.login("ann", "audit-pass-1")
    sue = demo.login("sue", "super-pass-1")
    a = A.new_application(demo, sue, rosa(), SETTINGS)
    before = counts(demo)
    for op in (tom, ann):
        with pytest.raises(PermissionDenied, match="manage_applications"):
            A.new_application(demo, op, rosa())
        with pytest.raises(PermissionDenied):
            A.survey(demo, op, a.number)
        with pytest.raises(PermissionDenied):
            A.cancel(demo, op, a.number, "no")
        with pytest.raises(PermissionDenied):
            A.submit_batch(demo, op, [rosa()], SETTINGS)
    assert counts(demo) == before
    assert [x.number for x in A.list_applications(demo, ann)] == [a.number]  # auditors may look


def test_list_by_state_and_search(demo, clerk):
    a = A.new_application(demo, clerk, rosa(), SETTINGS)
    b = A.new_application(demo, clerk, rosa(name="Tom Hill"), SETTINGS)
    A.survey(demo, clerk, b.number)
    assert [x.number for x in A.list_applications(demo, clerk, state="received")] == [a.number]
    assert [x.number for x in A.list_applications(demo, clerk, state="surveyed")] == [b.number]
    assert [x.number for x in A.list_applications(demo, clerk)] == [b.number, a.number]
    assert [x.number for x in A.list_applications(demo, clerk, text="hill")] == [b.number]
    assert [x.number for x in A.list_applications(demo, clerk, text=a.number[-5:])] == [a.number]
    with pytest.raises(ValidationError, match="unknown application state"):
        A.list_applications(demo, clerk, state="sleeping")


def test_batch_keeps_settings_for_every_applicant(demo, clerk):
    text = ("name,address,phone,category,requested_amps\n"
            "Ana Lima,1 Elm Street,555-1,residential,20\n"
            "Bo Chen,3 Elm Street,,commercial,\n")
    people = A.applicants_from_csv(text)
    batch = A.BatchSettings(model_code="DDSY-1P", capacity_mode="alarm", tariff="flat",
                            district_code="R1-L1-T2", batch="ELM-2026")
    made = A.submit_batch(demo, clerk, people, batch, advance_to="meter_assigned")
    assert [(x.applicant_name, x.state) for x in made] == [("Ana Lima", "meter_assigned"),
                                                           ("Bo Chen", "meter_assigned")]
    for x in made:
        assert (x.model_code, x.capacity_mode, x.tariff, x.district_code, x.batch) == (
            "DDSY-1P", "alarm", "flat", "R1-L1-T2", "ELM-2026")
    assert [x.meter_no for x in made] == STORE[:2]
    assert made[1].category == "commercial" and made[1].requested_amps is None
    assert [x.number for x in A.list_applications(demo, clerk, batch="ELM-2026")] == [
        made[1].number, made[0].number]
    for x in made:
        A.install(demo, clerk, x.number)
        demo.reader.new_card()
        A.open_account(demo, clerk, x.number)
    with demo.uow() as uow:
        got = [(c.account_no, c.tariff, c.capacity_mode, c.district.code, c.capacity_amps)
               for c in uow.session.scalars(select(CustomerRow).where(
                   CustomerRow.account_no.in_(["100007", "100008"])).order_by(
                   CustomerRow.account_no))]
    assert got == [("100007", "flat", "alarm", "R1-L1-T2", Decimal("20.00")),
                   ("100008", "flat", "alarm", "R1-L1-T2", Decimal("40.00"))]  # model's rating


def test_batch_with_bad_rows_reports_all_and_writes_nothing(demo, clerk):
    before = counts(demo)
    people = [A.Applicant("Good One"), A.Applicant(" ", category="residential"),
              A.Applicant("Bad Cat", category="castle"),
              A.Applicant("Bad Amps", requested_amps="x")]
    with pytest.raises(ValidationError) as err:
        A.submit_batch(demo, clerk, people, SETTINGS)
    msg = str(err.value)
    assert msg.startswith("3 of 4 applicants are wrong; nothing was saved")
    assert "applicant 2 (no name)" in msg and "applicant 3 (Bad Cat)" in msg
    assert "applicant 4 (Bad Amps)" in msg and "Good One" not in msg
    # four applicants but three meters in the store: the fourth fails, the first three roll back
    four = [A.Applicant(f"Person {i}") for i in range(4)]
    with pytest.raises(BusinessRuleError, match="applicant 4 .*no free DDSY-1P meter.*nothing"):
        A.submit_batch(demo, clerk, four, SETTINGS, advance_to="installed")
    assert counts(demo) == before
    assert all(meter_row(demo, m) == (MeterStatus.IN_STORE, None) for m in STORE)
    with pytest.raises(ValidationError, match="at most to installed"):
        A.submit_batch(demo, clerk, four, SETTINGS, advance_to="opened")
    with pytest.raises(ValidationError, match="needs a meter model"):
        A.submit_batch(demo, clerk, four, A.BatchSettings(), advance_to="approved")


def test_csv_problems(demo):
    with pytest.raises(ValidationError, match="name column"):
        A.applicants_from_csv("who,where\nA,B\n")
    with pytest.raises(ValidationError, match="unknown CSV columns colour"):
        A.applicants_from_csv("name,colour\nA,red\n")
    with pytest.raises(ValidationError, match="line 2: more fields"):
        A.applicants_from_csv("name\nA,B,C\n")
    with pytest.raises(ValidationError, match="no applicants"):
        A.applicants_from_csv("name\n\n")


def test_numbers_stay_unique_when_stations_number_at_once(demo, clerk, tmp_path):
    """Two stations, four threads each, against one database: no number twice, none skipped."""
    other = Application(Config.from_dict({"database": {"url": demo.config.database_url},
                                          "station": {"code": "S02", "name": "Second"}},
                                         home=tmp_path / "s02"))
    apps = [demo, other] * 4
    per_thread = 5
    start = threading.Barrier(len(apps))
    made, failures = [], []

    def work(app, k):
        try:
            start.wait()
            for i in range(per_thread):
                made.append(A.new_application(app, clerk, rosa(name=f"T{k}-{i}")).number)
        except Exception as exc:  # collected and reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=work, args=(app, k)) for k, app in enumerate(apps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    other.close()
    assert failures == []
    year = A._now().year
    want = {f"{st}-{year}-{n:05d}" for st in ("S01", "S02") for n in range(1, 4 * per_thread + 1)}
    assert len(made) == len(set(made)) == len(want) and set(made) == want
    with demo.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(ApplicationStepRow)) == len(want)


def test_printable_form_as_text_and_pdf(demo, clerk, artifacts_dir, backend):
    a = to_installed(demo, clerk)
    demo.reader.new_card()
    a = A.open_account(demo, clerk, a.number, notes="card handed over")
    text = A.render_form(demo, clerk, a.number)
    for value in (a.number, "Rosa Park", "5 Elm Street", "555-0199", "residential", "32.00",
                  "R1-L1-T1", "DDSY-1P", "trip", "flat", a.meter_no, "100007", a.card_uid,
                  "Demo Power Supply Department"):
        assert value in text, value
    step_lines = [line for line in text.splitlines() if line[:3].strip().isdigit()]
    assert [line.split()[3] for line in step_lines] == [s.state for s in a.steps]
    assert len(step_lines) == 6 and "pole 20 m away, line has capacity" in text
    assert "card handed over" in text and "Next step: complete" in text
    pdf = A.render_form(demo, clerk, a.number, pdf=True)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF") and len(pdf) > 2000
    assert b"/Creator (DBMIS)" in pdf and f"/Title (Application {a.number})".encode() in pdf
    assert pdf.count(b"/Type /Page\n") == 1  # one A4 page
    if backend == "sqlite":
        Path(artifacts_dir, "application-form.pdf").write_bytes(pdf)
        Path(artifacts_dir, "application-form.txt").write_text(text)
