"""System parameters in the database: typed, validated, defaults, the TOML fallback, the cached
accessor of the sale path, and who may change them (both backends)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from dbmis_core.app import Application
from dbmis_core.errors import NotFound, PermissionDenied, ValidationError
from dbmis_core.services import audit, backup, debts, settings, vending
from dbmis_core.services.auth import Operator, create_operator
from dbmis_core.storage.models import SettingRow, StationRow, UtilityRow

CLERK = Operator("clerk", "Demo Clerk", "clerk")


def test_every_setting_has_a_default_and_starts_from_config_or_default(app, admin):
    values = {v.name: v for v in settings.list_settings(app, admin)}
    assert set(values) == set(settings.DEFINITIONS)
    assert values["sales.min_amount"].value == Decimal("1.00")
    assert values["sales.min_amount"].source == "config"
    assert values["alarm.alarm1"].source == "default"
    assert values["alarm.alarm1"].value == Decimal("0.00")
    assert values["sales.refuse_unloaded"].value is True
    assert values["utility.code"].value == "DEMO"
    assert values["station.name"].value == "Main counter"


def test_a_database_value_wins_over_the_config_and_reset_falls_back(app, admin):
    assert settings.sales(app).max_amount == Decimal("5000.00")
    v = settings.set_value(app, admin, "sales.max_amount", "750.5")
    assert (v.value, v.source, v.updated_by) == (Decimal("750.50"), "database", "admin")
    assert settings.sales(app).max_amount == Decimal("750.50")
    with pytest.raises(ValidationError, match="largest purchase is 750.50"):
        vending._check_amount(app, "800")
    r = settings.reset(app, admin, "sales.max_amount")
    assert (r.value, r.source) == (Decimal("5000.00"), "config")
    assert vending._check_amount(app, "800") == Decimal("800.00")


@pytest.mark.parametrize("name,raw,match", [
    ("sales.min_amount", "0", "above 0"),
    ("sales.min_amount", "abc", "must be a number"),
    ("sales.max_amount", "1.005", "more than 2 decimals"),
    ("sales.debt_share", "1.5", "from 0 to 1"),
    ("sales.refuse_unloaded", "maybe", "yes or no"),
    ("backup.time", "25:00", "time of day"),
    ("backup.keep_daily", "0", "from 1 to 3650"),
    ("security.idle_lock_minutes", "-1", "from 0 to 1440"),
    ("receipt.prefix", "TOO-LONG-PREFIX", "up to 6"),
    ("utility.code", "", "1 to 16"),
])
def test_bad_values_are_refused_and_nothing_changes(app, admin, name, raw, match):
    before = settings.get(app, admin, name)
    with pytest.raises(ValidationError, match=match):
        settings.set_value(app, admin, name, raw)
    assert settings.get(app, admin, name) == before


def test_rules_between_parameters(app, admin):
    settings.set_value(app, admin, "sales.max_amount", "100")
    with pytest.raises(ValidationError, match="smallest purchase .* above the largest"):
        settings.set_value(app, admin, "sales.min_amount", "200")
    settings.set_value(app, admin, "alarm.alarm1", "20")
    with pytest.raises(ValidationError, match="alarm level 2 is the lower one"):
        settings.set_value(app, admin, "alarm.alarm2", "30")
    settings.set_value(app, admin, "alarm.alarm2", "5")
    with pytest.raises(ValidationError, match="not be above the hoarding limit"):
        settings.set_value(app, admin, "alarm.hoarding_limit", "10")
    assert settings.alarm_defaults(app) == {"alarm1": Decimal("20.00"), "alarm2": Decimal("5.00"),
                                            "hoarding_limit": Decimal("0.00"),
                                            "overdraft_limit": Decimal("0.00")}


def test_unknown_setting(app, admin):
    with pytest.raises(NotFound, match="unknown setting 'sales.nope'"):
        settings.get(app, admin, "sales.nope")


def test_utility_and_station_live_in_their_rows(app, admin):
    settings.set_value(app, admin, "utility.name", "River Power Co")
    settings.set_value(app, admin, "utility.code", "rpc")
    settings.set_value(app, admin, "station.name", "Harbour counter")
    with app.uow() as uow:
        u = uow.session.scalar(select(UtilityRow))
        st = uow.session.scalar(select(StationRow).where(StationRow.code == "S01"))
        assert (u.code, u.name, st.name) == ("RPC", "River Power Co", "Harbour counter")
        assert uow.session.scalar(select(SettingRow).where(SettingRow.name == "utility.name")) is None
    with pytest.raises(ValidationError, match="no default"):
        settings.reset(app, admin, "utility.name")


def test_only_administrators_and_supervisors_change_settings(app, admin):
    with app.uow() as uow:
        create_operator(uow, "sue", "Sue Supervisor", "super-pass-1", "supervisor")
        create_operator(uow, "tom", "Tom Technician", "tech-pass-1", "technician")
        uow.commit()
    sue, tom = app.login("sue", "super-pass-1"), app.login("tom", "tech-pass-1")
    settings.set_value(app, sue, "receipt.prefix", "hq")
    assert settings.get(app, tom, "receipt.prefix").value == "HQ"  # everyone may read
    for op in (tom, CLERK, Operator("ann", "Ann", "auditor")):
        with pytest.raises(PermissionDenied, match="may not manage_settings"):
            settings.set_value(app, op, "receipt.prefix", "X")
    assert settings.get(app, admin, "receipt.prefix").value == "HQ"


def test_every_change_is_audited_with_before_and_after(app, admin):
    settings.set_value(app, admin, "sales.debt_share", "0.35")
    settings.set_value(app, admin, "utility.name", "New Name")
    recs = [r for r in audit.search(app, admin) if r.kind == "setting.change"]
    by_subject = {r.subject: r.details for r in recs}
    assert by_subject["sales.debt_share"] == {"before": "0.20", "after": "0.35",
                                              "source": "database"}
    assert by_subject["utility.name"]["after"] == "New Name"
    assert audit.verify(app, admin).ok


def test_the_sale_path_sees_a_change_from_another_process(app, admin, monkeypatch):
    """Another Application on the same database (another station) sees the change once its
    cache is re-checked; the version counter makes it re-read."""
    other = Application(app.config)
    try:
        assert settings.sales(other).min_amount == Decimal("1.00")
        settings.set_value(app, admin, "sales.min_amount", "5")
        settings.set_value(app, admin, "sales.refuse_unloaded", "no")
        # within REFRESH_SECONDS the other process keeps its cached values
        assert settings.sales(other).min_amount == Decimal("1.00")
        monkeypatch.setattr(settings, "REFRESH_SECONDS", 0.0)
        limits = settings.sales(other)
        assert (limits.min_amount, limits.refuse_unloaded) == (Decimal("5.00"), False)
        with pytest.raises(ValidationError, match="smallest purchase is 5.00"):
            vending._check_amount(other, "2")
    finally:
        other.close()


def test_config_edits_at_run_time_still_apply_without_a_database_value(app, admin):
    app.config.data["sales"]["hoarding_limit"] = "150"
    assert settings.sales(app).hoarding_limit == Decimal("150.00")
    app.config.data["sales"]["debt_share"] = "0.5"
    assert debts.default_share(app) == Decimal("0.5")
    settings.set_value(app, admin, "sales.debt_share", "0.1")
    assert debts.default_share(app) == Decimal("0.1")


def test_backup_schedule_and_idle_lock_come_from_the_settings(app, admin):
    assert backup.keep_daily(app) == 14
    settings.set_value(app, admin, "backup.keep_daily", "30")
    settings.set_value(app, admin, "backup.time", "03:15")
    settings.set_value(app, admin, "security.idle_lock_minutes", "2.5")
    assert backup.keep_daily(app) == 30
    assert backup.scheduled_time(app).strftime("%H:%M") == "03:15"
    assert settings.value(app, "security.idle_lock_minutes") == Decimal("2.5")


def test_personnel_records(app, admin):
    from dbmis_core.services import personnel

    p = personnel.add(app, admin, "E-001", "Ivan Petrov", "Inspector", "555 0199")
    assert (p.employee_no, p.operator_login, p.active) == ("E-001", None, True)
    with pytest.raises(ValidationError, match="already used"):
        personnel.add(app, admin, "E-001", "Someone Else")
    with pytest.raises(ValidationError, match="no operator with login 'ghost'"):
        personnel.add(app, admin, "E-002", "Ghost", operator_login="ghost")
    with pytest.raises(ValidationError, match="phone"):
        personnel.add(app, admin, "E-002", "Bad Phone", phone="call me")
    personnel.add(app, admin, "E-002", "Anna Admin", "IT", operator_login="admin")
    with pytest.raises(ValidationError, match="already linked to E-002"):
        personnel.change(app, admin, "E-001", operator_login="admin")
    left = personnel.change(app, admin, "E-001", title="Senior inspector", active=False)
    assert (left.title, left.active) == ("Senior inspector", False)
    assert [x.employee_no for x in personnel.list_people(app, CLERK, active_only=True)] == ["E-002"]
    with pytest.raises(PermissionDenied):
        personnel.add(app, CLERK, "E-003", "Clerk's friend")
    recs = [(r.kind, r.subject) for r in audit.search(app, admin) if r.kind.startswith("personnel")]
    assert ("personnel.change", "E-001") in recs and ("personnel.add", "E-002") in recs


def test_a_sale_rechecks_the_settings_inside_its_own_transaction(demo, admin, monkeypatch):
    """With the cache due for a re-check at every call, a sale re-reads the settings through its
    open unit of work (a second connection would wait on SQLite's write lock)."""
    from dbmis_core.services import cards

    monkeypatch.setattr(settings, "REFRESH_SECONDS", 0.0)
    settings.set_value(demo, admin, "sales.hoarding_limit", "1000")
    demo.reader.new_card()
    cards.issue_user_card(demo, admin, "100001")
    sold = vending.vend(demo, admin, "100001", "20.00")
    assert sold.state == "completed"
    settings.set_value(demo, admin, "sales.refuse_unloaded", "no")
    settings.set_value(demo, admin, "sales.hoarding_limit", "1")
    from dbmis_core.errors import BusinessRuleError

    with pytest.raises(BusinessRuleError, match="hoarding limit 1.00"):
        vending.vend(demo, admin, "100001", "20.00")
