"""Every service operation, called as every role (issue 5 point 1).

``OPERATIONS`` is the table: each public service operation with the permission it needs and a call
with minimal arguments. One walk per role runs the whole table on its own demo database, as an
operator of that role created there. A role that has the permission is never refused with
PermissionDenied (it may fail later for business reasons: a wrong card, nothing to close); a role
without it is refused with PermissionDenied and nothing changed (row counts of every table, the
audit log among them, and the files under the data folder). The auditor is read only: no operation
that changes data is open to it, and nothing it may call changes the fingerprint.

``test_the_table_covers_every_service_operation`` scans dbmis_core/services/ with ast, so a new
operation that takes an operator or calls ``.require(`` fails the suite until it is in the table
(or in ``EXEMPT`` with the reason it needs no permission of its own).
"""

from __future__ import annotations

import ast
import os
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from sqlalchemy import func, select

from dbmis_core import domain
from dbmis_core.errors import PermissionDenied
from dbmis_core.services import (
    applications,
    archive,
    audit,
    backup,
    cards,
    cardtools,
    charts,
    codes,
    consumption,
    customers,
    dayclose,
    debts,
    inspections,
    lineloss,
    meterstore,
    operators,
    personnel,
    receipts,
    registry,
    reissue,
    reports,
    reversal,
    search,
    settings,
    setup,
    tariffs,
    vending,
    workorders,
)
from dbmis_core.services.auth import ROLES, Perm
from dbmis_core.storage.models import Base

SERVICES = Path(__file__).resolve().parents[2] / "dbmis_core" / "services"
PASSWORD = "walk-pass-4242"
TARGET = "target_op"      # an operator the operator-management calls act on
STORE = "000020249001"    # demo meters in store
STORE2 = "000020249002"


@attrs.frozen
class AllOf:
    perms: tuple[Perm, ...]

    def allows(self, role: str) -> bool:
        return all(p in ROLES[role] for p in self.perms)


@attrs.frozen
class AnyOf:
    perms: tuple[Perm, ...]

    def allows(self, role: str) -> bool:
        return any(p in ROLES[role] for p in self.perms)


def allows(need, role: str) -> bool:
    return need.allows(role) if isinstance(need, AllOf | AnyOf) else need in ROLES[role]


@attrs.frozen
class Op:
    name: str        # "module.function", optionally "[variant]"
    need: object     # Perm, AllOf or AnyOf
    changes: bool    # writes data (never for the auditor)
    call: object     # (world, operator) -> anything

    @property
    def function(self) -> str:
        return self.name.split("[")[0]


@attrs.define
class World:
    """What the preparation made as administrator: ids the operations refer to."""

    app: object
    tmp: Path
    receipt_no: str = ""
    vend_id: int = 0
    application: str = ""
    order_id: int = 0
    notice_id: int = 0
    backup_name: str = ""


def _uow(w, fn):
    """Run a registry call (they take a unit of work) and commit what it did."""
    with w.app.uow() as uow:
        out = fn(uow)
        uow.commit()
        return out


def _reissue_with_reader(w, op):
    with w.app.reader.connect() as conn:
        return reissue.reconcile_reissue(w.app, op, conn)


def _meters_csv(w, op):
    return meterstore.import_meters(w.app, op, w.tmp / "meters.csv",
                                    data=b"meter_no,model\n000020249077,DDSY-1P\n")


A = applications
SETTINGS = A.BatchSettings(model_code="DDSY-1P", capacity_mode="trip", tariff="flat",
                           district_code="R1-L1-T1")
P = Perm

# Reads first, then changes, then the destructive ones (closing an account, archiving, key
# rotation, restore) at the end, so an allowed earlier call does not take away what a later one
# uses.
OPERATIONS: list[Op] = [
    # --- reads -----------------------------------------------------------------------------------
    Op("vending.quote", P.VIEW, False, lambda w, op: vending.quote(w.app, op, "100001", "10.00")),
    Op("vending.check_sale", P.VIEW, False,
       lambda w, op: vending.check_sale(w.app, op, "100002", "10.00")),
    Op("vending.unfinished", P.VIEW, False, lambda w, op: vending.unfinished(w.app, op)),
    Op("vending.sales_of", P.VIEW, False, lambda w, op: vending.sales_of(w.app, op, "100002")),
    Op("cards.read_card", P.READ_CARD, False, lambda w, op: cards.read_card(w.app, op)),
    Op("cardtools.describe_any_card", P.READ_CARD, False,
       lambda w, op: cardtools.describe_any_card(w.app, op)),
    Op("cardtools.service_card_log", P.VIEW, False,
       lambda w, op: cardtools.service_card_log(w.app, op)),
    Op("reissue.reissues_of", P.VIEW, False,
       lambda w, op: reissue.reissues_of(w.app, op, "100001")),
    Op("reversal.reversals_of_sale", P.VIEW, False,
       lambda w, op: reversal.reversals_of_sale(w.app, op, w.vend_id)),
    Op("applications.get_application", P.VIEW, False,
       lambda w, op: A.get_application(w.app, op, w.application)),
    Op("applications.list_applications", P.VIEW, False,
       lambda w, op: A.list_applications(w.app, op)),
    Op("applications.form_context", P.VIEW, False,
       lambda w, op: A.form_context(w.app, op, w.application)),
    Op("applications.render_form", P.VIEW, False,
       lambda w, op: A.render_form(w.app, op, w.application)),
    Op("applications.form_choices", P.VIEW, False, lambda w, op: A.form_choices(w.app, op)),
    Op("customers.changes_of", P.VIEW, False,
       lambda w, op: customers.changes_of(w.app, op, "100001")),
    Op("customers.customer_record", P.VIEW, False,
       lambda w, op: customers.customer_record(w.app, op, "100001")),
    Op("customers.customer_summary", P.VIEW, False,
       lambda w, op: customers.customer_summary(w.app, op, "100001")),
    Op("debts.list_debts", P.VIEW, False, lambda w, op: debts.list_debts(w.app, op, "100001")),
    Op("registry.find_customers", P.VIEW, False,
       lambda w, op: _uow(w, lambda u: registry.find_customers(u, op, "Li"))),
    Op("tariffs.history", P.VIEW, False, lambda w, op: tariffs.history(w.app, op, "flat")),
    Op("tariffs.list_tariffs", P.VIEW, False, lambda w, op: tariffs.list_tariffs(w.app, op)),
    Op("tariffs.explain", P.VIEW, False,
       lambda w, op: tariffs.explain(w.app, op, "100001", "10.00")),
    Op("receipts.receipt_text", P.VIEW, False,
       lambda w, op: receipts.receipt_text(w.app, op, w.receipt_no, copy=True)),
    Op("receipts.receipt_pdf", P.VIEW, False,
       lambda w, op: receipts.receipt_pdf(w.app, op, w.receipt_no, copy=True)),
    Op("receipts.invoice_html", P.VIEW, False,
       lambda w, op: receipts.invoice_html(w.app, op, w.receipt_no, copy=True)),
    Op("receipts.invoice_pdf", P.VIEW, False,
       lambda w, op: receipts.invoice_pdf(w.app, op, w.receipt_no, copy=True)),
    Op("receipts.receipt_register", P.VIEW, False,
       lambda w, op: receipts.receipt_register(w.app, op)),
    Op("dayclose.summary", P.CLOSE_DAY, False, lambda w, op: dayclose.summary(w.app, op)),
    Op("dayclose.summary[other]", P.CLOSE_ANY_DAY, False,
       lambda w, op: dayclose.summary(w.app, op, "admin")),
    Op("dayclose.closings", P.VIEW, False, lambda w, op: dayclose.closings(w.app, op)),
    Op("dayclose.get_closing", P.VIEW, False, lambda w, op: dayclose.get_closing(w.app, op, 1)),
    Op("dayclose.open_operators", P.VIEW, False, lambda w, op: dayclose.open_operators(w.app, op)),
    Op("consumption.monthly", P.VIEW, False,
       lambda w, op: consumption.monthly(w.app, op, "100001")),
    Op("consumption.rank", P.ANALYSE, False, lambda w, op: consumption.rank(w.app, op)),
    Op("consumption.analyse_customer", P.VIEW, False,
       lambda w, op: consumption.analyse_customer(w.app, op, "100001")),
    Op("charts.customer_trend", P.VIEW, False,
       lambda w, op: charts.customer_trend(w.app, op, "100001")),
    Op("charts.area_totals", P.VIEW, False, lambda w, op: charts.area_totals(w.app, op)),
    Op("charts.customer_chart", P.VIEW, False,
       lambda w, op: charts.customer_chart(w.app, op, "100001", "svg")),
    Op("charts.area_chart", P.VIEW, False,
       lambda w, op: charts.area_chart(w.app, op, fmt="svg")),
    Op("inspections.list_notices", P.VIEW, False,
       lambda w, op: inspections.list_notices(w.app, op)),
    Op("workorders.get", P.VIEW, False, lambda w, op: workorders.get(w.app, op, w.order_id)),
    Op("workorders.list_orders", P.VIEW, False, lambda w, op: workorders.list_orders(w.app, op)),
    Op("workorders.labels", P.VIEW, False, lambda w, op: workorders.labels(w.app, op)),
    Op("workorders.labels_csv", P.VIEW, False, lambda w, op: workorders.labels_csv(w.app, op)),
    Op("reports.list_reports", P.VIEW_REPORTS, False,
       lambda w, op: reports.list_reports(w.app, op)),
    *[Op(f"reports.run[{name}]", P.VIEW_REPORTS, False,
         lambda w, op, name=name: reports.run(w.app, op, name))
      for name in ("daily-sales", "monthly-sales", "line-loss", "service-cards")],
    Op("reports.run[customer-statement]", P.VIEW_REPORTS, False,
       lambda w, op: reports.run(w.app, op, "customer-statement", account_no="100002")),
    Op("search.find", P.VIEW, False, lambda w, op: search.find(w.app, op, "Li")),
    Op("lineloss.readings", P.VIEW, False, lambda w, op: lineloss.readings(w.app, op)),
    Op("settings.list_settings", P.VIEW, False, lambda w, op: settings.list_settings(w.app, op)),
    Op("settings.get", P.VIEW, False, lambda w, op: settings.get(w.app, op, "alarm.alarm1")),
    Op("codes.list_entries", P.VIEW, False,
       lambda w, op: codes.list_entries(w.app, op, "category")),
    Op("meterstore.list_meters", P.VIEW, False, lambda w, op: meterstore.list_meters(w.app, op)),
    Op("meterstore.history", P.VIEW, False, lambda w, op: meterstore.history(w.app, op, STORE)),
    Op("personnel.list_people", P.VIEW, False, lambda w, op: personnel.list_people(w.app, op)),
    Op("operators.list_operators", P.SUPERVISE_OPERATORS, False,
       lambda w, op: operators.list_operators(w.app, op)),
    Op("operators.get_operator", P.SUPERVISE_OPERATORS, False,
       lambda w, op: operators.get_operator(w.app, op, TARGET)),
    Op("operators.events", P.SUPERVISE_OPERATORS, False,
       lambda w, op: operators.events(w.app, op)),
    Op("audit.search", P.VIEW_AUDIT, False, lambda w, op: audit.search(w.app, op, limit=5)),
    Op("audit.verify", P.VIEW_AUDIT, False, lambda w, op: audit.verify(w.app, op)),
    Op("audit.kinds", P.VIEW_AUDIT, False, lambda w, op: audit.kinds(w.app, op)),
    Op("backup.list_backups", P.BACKUP, False, lambda w, op: backup.list_backups(w.app, op)),
    Op("backup.verify", P.BACKUP, False,
       lambda w, op: backup.verify(w.app, op, w.backup_name)),
    Op("archive.status", P.BACKUP, False, lambda w, op: archive.status(w.app, op)),
    Op("backup.key_status", P.MANAGE_KEYS, False, lambda w, op: backup.key_status(w.app, op)),
    # --- changes: money and cards ----------------------------------------------------------------
    Op("reissue.reconcile_reissue", P.RECONCILE, True, _reissue_with_reader),
    Op("reissue.reconcile_card", P.RECONCILE, True,
       lambda w, op: reissue.reconcile_card(w.app, op)),
    Op("vending.reconcile_card_in_reader", P.RECONCILE, True,
       lambda w, op: vending.reconcile_card_in_reader(w.app, op)),
    Op("vending.vend", P.VEND, True, lambda w, op: vending.vend(w.app, op, "100002", "5.00")),
    Op("debts.add_debt", P.MANAGE_DEBTS, True,
       lambda w, op: debts.add_debt(w.app, op, "100003", "meter damage", "5.00")),
    Op("debts.pay_debt", P.VEND, True, lambda w, op: debts.pay_debt(w.app, op, "100003", "1.00")),
    Op("reversal.reverse_sale", AllOf((P.VEND, P.REVERSE_SALE)), True,
       lambda w, op: reversal.reverse_sale(w.app, op, w.vend_id, "typed the wrong amount")),
    Op("customers.resend_makeup", P.CHANGE_METER, True,
       lambda w, op: customers.resend_makeup(w.app, op, "100002")),
    Op("reissue.reissue_card", P.REISSUE_CARD, True,
       lambda w, op: reissue.reissue_card(w.app, op, "100001", reason="lost")),
    Op("cards.issue_user_card", P.ISSUE_CARD, True,
       lambda w, op: cards.issue_user_card(w.app, op, "100004")),
    Op("cardtools.write_service_card", P.WRITE_SERVICE_CARDS, True,
       lambda w, op: cardtools.write_service_card(w.app, op, "test")),
    Op("cardtools.import_service_card_data", P.MANAGE_METERS, True,
       lambda w, op: cardtools.import_service_card_data(w.app, op)),
    Op("dayclose.close", P.CLOSE_DAY, True, lambda w, op: dayclose.close(w.app, op, "0.00")),
    Op("dayclose.close[other]", P.CLOSE_ANY_DAY, True,
       lambda w, op: dayclose.close(w.app, op, "20.00", operator="admin")),
    # --- changes: customers, applications, meters ------------------------------------------------
    Op("customers.change_customer", P.MANAGE_CUSTOMERS, True,
       lambda w, op: customers.change_customer(w.app, op, "100001", phone="555-0199")),
    Op("registry.add_region", P.MANAGE_CUSTOMERS, True,
       lambda w, op: _uow(w, lambda u: registry.add_region(
           u, op, domain.Region("R9", "Walk region", domain.RegionLevel.REGION, None)))),
    Op("registry.add_customer", P.MANAGE_CUSTOMERS, True,
       lambda w, op: _uow(w, lambda u: registry.add_customer(u, op, domain.Customer(
           "100099", "Walk Customer", "1 Walk Road", "555-0000",
           domain.CustomerCategory("residential"), "R1-L1-T1")))),
    Op("registry.add_meter_model", P.MANAGE_METERS, True,
       lambda w, op: _uow(w, lambda u: registry.add_meter_model(
           u, op, domain.MeterModel("WALK-1P", 1600, 1, Decimal("40"))))),
    Op("registry.add_meter", P.MANAGE_METERS, True,
       lambda w, op: _uow(w, lambda u: registry.add_meter(
           u, op, domain.Meter("000020249088", "DDSY-1P")))),
    Op("registry.install_meter", P.MANAGE_METERS, True,
       lambda w, op: _uow(w, lambda u: registry.install_meter(u, op, "000020249088", "100099"))),
    Op("setup.seed_demo", AllOf((P.MANAGE_CUSTOMERS, P.MANAGE_METERS)), True,
       lambda w, op: setup.seed_demo(w.app, op)),
    Op("applications.new_application", P.MANAGE_APPLICATIONS, True,
       lambda w, op: A.new_application(w.app, op, A.Applicant("Walk Applicant", "2 Walk Road"),
                                       SETTINGS)),
    Op("applications.survey", P.MANAGE_APPLICATIONS, True,
       lambda w, op: A.survey(w.app, op, w.application)),
    Op("applications.approve", P.MANAGE_APPLICATIONS, True,
       lambda w, op: A.approve(w.app, op, w.application)),
    Op("applications.assign_meter", P.MANAGE_APPLICATIONS, True,
       lambda w, op: A.assign_meter(w.app, op, w.application, STORE2)),
    Op("applications.install", P.MANAGE_APPLICATIONS, True,
       lambda w, op: A.install(w.app, op, w.application)),
    Op("applications.open_account", P.MANAGE_APPLICATIONS, True,
       lambda w, op: A.open_account(w.app, op, w.application)),
    Op("applications.complete", P.MANAGE_APPLICATIONS, True,
       lambda w, op: A.complete(w.app, op, w.application)),
    Op("applications.advance", P.MANAGE_APPLICATIONS, True,
       lambda w, op: A.advance(w.app, op, w.application, "survey")),
    Op("applications.submit_batch", P.MANAGE_APPLICATIONS, True,
       lambda w, op: A.submit_batch(w.app, op, [A.Applicant("Batch One")], SETTINGS)),
    Op("applications.reject", P.MANAGE_APPLICATIONS, True,
       lambda w, op: A.reject(w.app, op, w.application, "no supply there")),
    Op("applications.cancel", P.MANAGE_APPLICATIONS, True,
       lambda w, op: A.cancel(w.app, op, w.application, "applicant withdrew")),
    Op("tariffs.add_version", P.MANAGE_TARIFFS, True,
       lambda w, op: tariffs.add_version(w.app, op, "flat", {"residential": "0.6000"})),
    Op("consumption.compute", P.ANALYSE, True, lambda w, op: consumption.compute(w.app, op)),
    Op("inspections.raise_notice", AnyOf((P.VEND, P.MANAGE_INSPECTIONS)), True,
       lambda w, op: inspections.raise_notice(w.app, op, "seal broken", "100003")),
    Op("inspections.close_notice", P.MANAGE_METERS, True,
       lambda w, op: inspections.close_notice(w.app, op, w.notice_id, "seal replaced")),
    Op("workorders.create", P.MANAGE_INSPECTIONS, True,
       lambda w, op: workorders.create(w.app, op, "100004")),
    Op("workorders.create_from_ranking", P.MANAGE_INSPECTIONS, True,
       lambda w, op: workorders.create_from_ranking(w.app, op, consumption.RankedCustomer(
           0, "100005", "Ranked", "R1-L1-T2", 0.9, "2025-01", ()))),
    Op("workorders.create_from_notice", P.MANAGE_INSPECTIONS, True,
       lambda w, op: workorders.create_from_notice(w.app, op, w.notice_id)),
    Op("workorders.assign", P.MANAGE_INSPECTIONS, True,
       lambda w, op: workorders.assign(w.app, op, w.order_id, TARGET)),
    Op("workorders.record_outcome", P.MANAGE_INSPECTIONS, True,
       lambda w, op: workorders.record_outcome(w.app, op, w.order_id, "no_problem")),
    Op("lineloss.enter", P.MANAGE_METERS, True,
       lambda w, op: lineloss.enter(w.app, op, "R1-L1", "2025-01", "1000")),
    Op("lineloss.import_csv", P.MANAGE_METERS, True,
       lambda w, op: lineloss.import_csv(w.app, op, "R1-L1,2025-02,1000\n")),
    Op("meterstore.change_status", P.MANAGE_METERS, True,
       lambda w, op: meterstore.change_status(w.app, op, "000020249003", "under_test")),
    Op("meterstore.import_meters", P.MANAGE_METERS, True, _meters_csv),
    # --- changes: settings, code tables, personnel, operators ------------------------------------
    Op("settings.set_value", P.MANAGE_SETTINGS, True,
       lambda w, op: settings.set_value(w.app, op, "alarm.alarm1", "5")),
    Op("settings.reset", P.MANAGE_SETTINGS, True,
       lambda w, op: settings.reset(w.app, op, "alarm.alarm1")),
    Op("codes.add", P.MANAGE_SETTINGS, True,
       lambda w, op: codes.add(w.app, op, "payment", "WALK", "Walk payment")),
    Op("codes.change", P.MANAGE_SETTINGS, True,
       lambda w, op: codes.change(w.app, op, "payment", "WALK", name="Walk payment 2")),
    Op("codes.set_active", P.MANAGE_SETTINGS, True,
       lambda w, op: codes.set_active(w.app, op, "payment", "WALK", False)),
    Op("codes.add[manufacturer]", P.MANAGE_METERS, True,
       lambda w, op: codes.add(w.app, op, "manufacturer", "WALKMFG", "Walk meters")),
    Op("codes.change[manufacturer]", P.MANAGE_METERS, True,
       lambda w, op: codes.change(w.app, op, "manufacturer", "WALKMFG", name="Walk meters 2")),
    Op("personnel.add", P.MANAGE_SETTINGS, True,
       lambda w, op: personnel.add(w.app, op, "E-WALK", "Walk Person")),
    Op("personnel.change", P.MANAGE_SETTINGS, True,
       lambda w, op: personnel.change(w.app, op, "E-WALK", title="Inspector")),
    Op("operators.add_operator", P.MANAGE_OPERATORS, True,
       lambda w, op: operators.add_operator(w.app, op, "walk_new", "Walk New", "clerk",
                                            "Temporary-pass-77")),
    Op("operators.set_role", P.MANAGE_OPERATORS, True,
       lambda w, op: operators.set_role(w.app, op, TARGET, "technician")),
    Op("operators.reset_password", P.MANAGE_OPERATORS, True,
       lambda w, op: operators.reset_password(w.app, op, TARGET, "Fresh-start-88")),
    Op("operators.unlock", P.SUPERVISE_OPERATORS, True,
       lambda w, op: operators.unlock(w.app, op, TARGET)),
    Op("operators.deactivate", P.MANAGE_OPERATORS, True,
       lambda w, op: operators.deactivate(w.app, op, TARGET)),
    # --- destructive, last ------------------------------------------------------------------------
    Op("customers.replace_meter", P.CHANGE_METER, True,
       lambda w, op: customers.replace_meter(w.app, op, "100005", "000020249077")),
    Op("customers.close_account", P.CLOSE_ACCOUNT, True,
       lambda w, op: customers.close_account(w.app, op, "100006", refund=True)),
    Op("backup.take", P.BACKUP, True, lambda w, op: backup.take(w.app, op)),
    Op("backup.run_scheduled", P.BACKUP, True, lambda w, op: backup.run_scheduled(w.app, op)),
    Op("backup.rotate", P.BACKUP, True, lambda w, op: backup.rotate(w.app, op)),
    Op("backup.export_key", P.MANAGE_KEYS, True,
       lambda w, op: backup.export_key(w.app, op, w.tmp / "escrow.key", "escrow-secret-1")),
    Op("backup.rotate_key", P.MANAGE_KEYS, True, lambda w, op: backup.rotate_key(w.app, op)),
    Op("archive.run", P.BACKUP, True, lambda w, op: archive.run(w.app, op, 1)),
    Op("archive.unarchive", P.BACKUP, True, lambda w, op: archive.unarchive(w.app, op)),
    Op("backup.restore", P.BACKUP, True,
       lambda w, op: backup.restore(w.app, op, w.backup_name, confirm=True)),
]

# Public functions that take an operator but need no permission of their own, and why.
EXEMPT = {
    "audit.append": "writes the record of a change its (checked) caller makes; op is the actor",
    "audit.build": "builds (writes nothing) the record of a change its (checked) caller makes",
    "audit.record": "writes the record of a change its (checked) caller makes; op is the actor",
    "cash.record_cash": "a unit-of-work step of the checked sale, debt and closing services",
    "debts.add_debt_row": "a unit-of-work step of add_debt and the account closing (both checked)",
    "inspections.add_notice": "a unit-of-work step of raise_notice and the sale checks (checked)",
    "vending.record_return": "a unit-of-work step of the checked card services",
    "vending.store_return": "a unit-of-work step of the checked card services",
    "reversal.approver_for": "is itself the check of who approves a reversal",
    "operators.set_background": "the operator's own preference; every operator has one",
    "operators.clear_background": "the operator's own preference; every operator has one",
    "operators.background": "the operator's own preference; every operator has one",
}


def scanned_operations() -> dict[str, set[str]]:
    """{module.function: permissions it names in ``.require(...)``} for every public function in
    dbmis_core/services/ that takes ``op`` or calls ``<something>.require(``."""
    found = {}
    for path in sorted(SERVICES.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                continue
            requires = [n for n in ast.walk(node) if isinstance(n, ast.Call)
                        and isinstance(n.func, ast.Attribute) and n.func.attr == "require"]
            takes_op = any(a.arg == "op" for a in node.args.args + node.args.kwonlyargs)
            if requires or takes_op:
                found[f"{path.stem}.{node.name}"] = {
                    n.attr for r in requires for n in r.args[:1]
                    if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                    and n.value.id == "Perm"}
    return found


def test_the_table_covers_every_service_operation():
    scanned = scanned_operations()
    covered = {o.function for o in OPERATIONS}
    missing = sorted(set(scanned) - covered - set(EXEMPT))
    assert not missing, f"service operations missing from OPERATIONS (or EXEMPT): {missing}"
    assert not covered - set(scanned), f"unknown functions in OPERATIONS: {covered - set(scanned)}"
    assert not set(EXEMPT) - set(scanned), f"stale EXEMPT entries: {set(EXEMPT) - set(scanned)}"
    assert not covered & set(EXEMPT)
    assert len({o.name for o in OPERATIONS}) == len(OPERATIONS), "duplicate names in OPERATIONS"


def test_a_function_that_names_one_permission_is_listed_with_it():
    """Where the source checks a single literal Perm, the table says the same one."""
    scanned = scanned_operations()
    for o in OPERATIONS:
        perms = scanned[o.function]
        if len(perms) == 1 and isinstance(o.need, Perm) and "[" not in o.name:
            assert {o.need.name} == perms, o.name


def test_the_auditor_may_change_nothing():
    changing = [o.name for o in OPERATIONS if o.changes and allows(o.need, "auditor")]
    assert not changing, f"operations that change data open to the auditor: {changing}"
    assert [o for o in OPERATIONS if o.changes], "the table marks no operation as changing"


# Rows derived from the sales and rebuilt by any report that reads them (docs/decisions/0014): a
# read may bring them up to date, so they are left out of the auditor's read-only check.
DERIVED = {"sales_summary", "sales_customer_month", "sales_summary_state"}


def fingerprint(app, derived: bool = True) -> tuple:
    """Row counts of every table (the audit log among them) and the files under the data folder."""
    tables = [t for t in Base.metadata.sorted_tables if derived or t.name not in DERIVED]
    stmt = select(*[select(func.count()).select_from(t).scalar_subquery().label(t.name)
                    for t in tables])
    with app.uow() as uow:
        counts = dict(uow.session.execute(stmt).one()._mapping)
    files = []
    for root, _dirs, names in os.walk(app.config.home):
        for n in names:
            if n.startswith("dbmis.sqlite3"):
                continue
            p = Path(root) / n
            st = p.stat()
            files.append((str(p.relative_to(app.config.home)), st.st_size, st.st_mtime_ns))
    return counts, sorted(files)


def prepare(app, admin, tmp) -> World:
    """As administrator: a sale with its card left in the reader, an application, a notice, a work
    order, a backup and an operator to act on."""
    w = World(app, tmp)
    operators.add_operator(app, admin, TARGET, "Target Operator", "clerk", "Temporary-pass-11")
    app.reader.new_card()
    cards.issue_user_card(app, admin, "100002")
    sale = vending.vend(app, admin, "100002", "20.00")
    w.receipt_no, w.vend_id = sale.receipt_no, sale.vend_id
    w.application = A.new_application(app, admin, A.Applicant("Prep Applicant"), SETTINGS).number
    w.notice_id = inspections.raise_notice(app, admin, "prepared notice", "100003")
    w.order_id = workorders.create(app, admin, "100003").id
    w.backup_name = backup.take(app, admin).file
    return w


def operator_of(app, admin, role: str):
    login = f"walk_{role}"
    operators.add_operator(app, admin, login, f"Walk {role}", role, "Temporary-pass-99")
    return operators.change_password(app, login, "Temporary-pass-99", PASSWORD)


@pytest.mark.parametrize("role", list(ROLES))
def test_every_operation_as_role(demo, admin, tmp_path, role):
    w = prepare(demo, admin, tmp_path)
    op = operator_of(demo, admin, role)
    assert op.role == role and not op.must_change_password
    problems = []
    for o in OPERATIONS:
        before, before_read_only = fingerprint(demo), fingerprint(demo, derived=False)
        try:
            o.call(w, op)
            outcome = None
        except Exception as exc:  # noqa: BLE001  an allowed role may still meet a business refusal
            outcome = exc
        after = fingerprint(demo)
        if allows(o.need, role):
            if isinstance(outcome, PermissionDenied):
                problems.append(f"{o.name}: refused although {role} may: {outcome}")
            elif role == "auditor" and before_read_only != fingerprint(demo, derived=False):
                problems.append(f"{o.name}: the auditor's call changed data")
        else:
            if not isinstance(outcome, PermissionDenied):
                problems.append(f"{o.name}: not refused with PermissionDenied for {role} "
                                f"({type(outcome).__name__}: {outcome})")
            elif before != after:
                problems.append(f"{o.name}: refused for {role} but data changed")
    assert not problems, "\n".join(problems)
