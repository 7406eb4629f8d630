"""Tariff versions and the price a sale gets, on SQLite and PostgreSQL: versions are validated,
never start in the past and are never changed; a sale uses the customer's tariff with the version in
force when it is made and, for tiered tariffs, the energy bought so far in the month or year; meters
that count money and meters that count energy both work with the tiered tariff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from dbmis_core.domain import CreditUnit
from dbmis_core.errors import (
    BusinessRuleError,
    ConfigError,
    NotFound,
    PermissionDenied,
    PluginError,
    ValidationError,
)
from dbmis_core.services import cards, setup, tariffs, vending
from dbmis_core.storage.models import CustomerRow, MeterModelRow, TariffVersionRow, VendRow
from dbmis_core.testing.databases import ADMIN, ADMIN_PW, make_app

NOW = lambda: datetime.now(UTC)  # noqa: E731


@pytest.fixture
def shop(tmp_path, backend, home):
    """Demo data; sales allowed while the previous one is not loaded (many sales, no meter walks)."""
    app, drop = make_app(tmp_path, backend, sales={"refuse_unloaded": False})
    setup.init(app, ADMIN, ADMIN_PW)
    op = app.login(ADMIN, ADMIN_PW)
    setup.seed_demo(app, op)
    yield app, op
    app.close()
    drop()


def _count_versions(app):
    with app.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(TariffVersionRow))


def _set_customer_tariff(app, account_no, name):
    with app.uow() as uow:
        uow.session.execute(update(CustomerRow).where(CustomerRow.account_no == account_no)
                            .values(tariff=name))
        uow.commit()


def _card(app, op, account_no):
    app.reader.new_card()
    return cards.issue_user_card(app, op, account_no)


# -- versions -------------------------------------------------------------------------------------
def test_versions_are_validated_kept_and_never_start_in_the_past(shop):
    app, op = shop
    with pytest.raises(ValidationError, match="must be positive"):
        tariffs.add_version(app, op, "flat", {"residential": "-1"})
    with pytest.raises(ValidationError, match="float"):
        tariffs.add_version(app, op, "flat", {"residential": 0.5})
    with pytest.raises(ValidationError, match="last block"):
        tariffs.add_version(app, op, "tiered", {"blocks": {"residential": [{"upto": "5",
                                                                             "price": "1"}]}})
    with pytest.raises(NotFound, match="unknown tariff 'nope'"):
        tariffs.add_version(app, op, "nope", {})
    with pytest.raises(BusinessRuleError, match="cannot start in the past"):
        tariffs.add_version(app, op, "flat", {"residential": "0.6"}, NOW() - timedelta(minutes=1))
    assert _count_versions(app) == 0

    v1 = tariffs.add_version(app, op, "flat", {"residential": D("0.5000")}, note="cheaper")
    later = NOW() + timedelta(days=30)
    v2 = tariffs.add_version(app, op, "flat", {"residential": "0.7000"}, later, note="next month")
    assert (v1.state, v2.state, v1.settings, v1.created_by) == ("in force", "future",
                                                                {"residential": "0.5000"}, ADMIN)
    with pytest.raises(BusinessRuleError, match="already has a version"):
        tariffs.add_version(app, op, "flat", {"residential": "0.8000"}, later)
    assert _count_versions(app) == 2

    hist = tariffs.history(app, op, "flat")
    assert [(v.id, v.state, v.note) for v in hist] == [(v1.id, "in force", "cheaper"),
                                                      (v2.id, "future", "next month")]
    assert [v.state for v in tariffs.history(app, op, "flat", at=later)] == ["past", "in force"]
    with app.uow() as uow:
        assert tariffs.in_force(uow, "flat", NOW(), app.config) == {"residential": "0.5000"}
        assert tariffs.in_force(uow, "flat", later, app.config) == {"residential": "0.7000"}
        # before the first version: the configuration's [tariffs.flat] (none here)
        assert tariffs.in_force(uow, "flat", NOW() - timedelta(days=1), app.config) == {}
        assert tariffs.in_force(uow, "tiered", NOW(), app.config) == {}
    listed = {t["name"]: t for t in tariffs.list_tariffs(app, op)}
    assert listed["flat"]["default"] and listed["flat"]["versions"] == 2
    assert listed["flat"]["in_force_version"] == v1.id and listed["flat"]["next_change"] == later
    assert listed["tiered"]["period"] == "month" and listed["tiered-annual"]["period"] == "year"
    assert listed["tiered"]["in_force_version"] is None


def test_only_tariff_managers_add_versions(shop):
    app, _op = shop
    clerk = app.login("clerk", "clerk-demo-1")
    with pytest.raises(PermissionDenied):
        tariffs.add_version(app, clerk, "flat", {"residential": "0.6"})
    assert len(tariffs.history(app, clerk, "flat")) == 0  # looking is allowed
    assert _count_versions(app) == 0


# -- sales ----------------------------------------------------------------------------------------
def test_a_sale_uses_the_version_in_force_when_it_is_made(shop):
    app, op = shop
    _card(app, op, "100001")
    assert vending.vend(app, op, "100001", "50.00").energy == D("89.28")  # default 0.56
    tariffs.add_version(app, op, "flat", {"residential": "0.5000"})
    tariffs.add_version(app, op, "flat", {"residential": "0.2500"}, NOW() + timedelta(hours=1))
    r = vending.vend(app, op, "100001", "50.00")
    assert (r.energy, r.credit) == (D("100.00"), D("100.00"))
    assert "Energy charge" in r.receipt_text and "flat @ 0.5000/kWh" in r.receipt_text
    later = NOW() + timedelta(hours=2)
    with app.uow() as uow:
        customer = vending.get_customer_row(uow, "100001")
        assert vending._quote(app, customer, D("50.00"), uow=uow, at=later).energy == D("200.00")
    assert vending.quote(app, op, "100001", "50.00").energy == D("100.00")
    with app.uow() as uow:
        assert [v.unit_price for v in uow.session.scalars(select(VendRow).order_by(VendRow.id))] \
            == [D("0.5600"), D("0.5000")]


def test_tiered_sales_count_the_months_energy_and_cross_blocks(shop):
    app, op = shop
    _set_customer_tariff(app, "100001", "tiered")
    tariffs.add_version(app, op, "tiered", {
        "surcharges": [{"name": "Rural levy", "per_kwh": "0.0100"}]})
    _card(app, op, "100001")
    # block 1: 0.30 + 0.01 levy = 0.31 per kWh; 50 kWh = 15.50
    r1 = vending.vend(app, op, "100001", "10.00")
    assert r1.energy == D("32.25")                       # 10.00 / 0.31 = 32.258
    # 17.75 kWh left in block 1 cost 5.5025 -> 5.51; 4.49 / 0.57 = 7.877 -> 7.87
    q = vending.quote(app, op, "100001", "10.00")
    r2 = vending.vend(app, op, "100001", "10.00")
    assert r2.energy == q.energy == D("25.62")
    # 5.325 -> 5.33, 4.4072 -> 4.41, levy 25.62 * 0.01 -> 0.26: 10.00 exactly, nothing left over
    assert q.lines == (("17.75 kWh @ 0.3000", D("5.33")), ("7.87 kWh @ 0.5600", D("4.41")),
                       ("Rural levy", D("0.26")))
    assert "17.75 kWh @ 0.3000" in r2.receipt_text and "Rural levy" in r2.receipt_text
    with app.uow() as uow:
        stored = uow.session.scalars(select(VendRow).order_by(VendRow.id)).all()
        assert [v.tariff for v in stored] == ["tiered", "tiered"]
        assert stored[1].price_lines == [[n, str(v)] for n, v in q.lines]
    # a failed or reversed sale and sales of the previous month do not count
    with app.uow() as uow:
        uow.session.execute(update(VendRow).where(VendRow.id == r2.vend_id).values(state="failed"))
        uow.commit()
    assert vending.quote(app, op, "100001", "10.00").energy == D("25.62")  # only r1 counts
    with app.uow() as uow:
        uow.session.execute(update(VendRow).where(VendRow.id == r1.vend_id)
                            .values(created_at=NOW().replace(day=1) - timedelta(days=1)))
        uow.commit()
    assert vending.quote(app, op, "100001", "10.00").energy == D("32.25")  # a fresh month
    p = tariffs.explain(app, op, "100001", "10.00")
    assert (p.tariff, p.period, p.period_energy) == ("tiered", "month", D("0.00"))
    assert p.period_start == NOW().replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def test_with_a_tiered_default_the_sale_reads_the_months_energy_with_its_context(
        tmp_path, backend, home):
    """The sale context carries the tariff look-up (one round trip less per sale): with a tiered
    default it must count the month's energy exactly as the separate look-up does, and a customer
    on another tariff still gets that tariff's version."""
    app, drop = make_app(tmp_path, backend, sales={"refuse_unloaded": False},
                         tariff={"default": "tiered"})
    try:
        setup.init(app, ADMIN, ADMIN_PW)
        op = app.login(ADMIN, ADMIN_PW)
        setup.seed_demo(app, op)
        _card(app, op, "100001")
        r1 = vending.vend(app, op, "100001", "10.00")   # 10.00 / 0.30 in block 1
        q = vending.quote(app, op, "100001", "10.00")    # the separate look-up
        r2 = vending.vend(app, op, "100001", "10.00")
        assert (r1.energy, r2.energy) == (D("33.33"), q.energy)
        assert q.energy < r1.energy                      # block 2 reached: the month counted
        _set_customer_tariff(app, "100002", "flat")
        tariffs.add_version(app, op, "flat", {"residential": "0.5000"})
        _card(app, op, "100002")
        assert vending.vend(app, op, "100002", "50.00").energy == D("100.00")
    finally:
        app.close()
        drop()


def test_annual_tier_counts_the_whole_year(shop):
    app, op = shop
    _set_customer_tariff(app, "100001", "tiered-annual")
    _card(app, op, "100001")
    vending.vend(app, op, "100001", "15.00")  # exactly block 1: 50 kWh
    p = tariffs.explain(app, op, "100001", "5.60")
    assert (p.period, p.period_energy, p.quote.energy) == ("year", D("50.00"), D("10.00"))
    assert p.period_start == datetime(NOW().year, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("unit", [CreditUnit.KWH, CreditUnit.MONEY])
def test_tiered_tariff_on_meters_counting_energy_or_money(shop, unit):
    app, op = shop
    with app.uow() as uow:  # 100003 is commercial, on a DTSY-3P meter
        uow.session.execute(update(MeterModelRow).where(MeterModelRow.code == "DTSY-3P")
                            .values(credit_unit=int(unit)))
        uow.commit()
    _set_customer_tariff(app, "100003", "tiered")
    tariffs.add_version(app, op, "tiered", {"blocks": {"commercial": [
        {"upto": "100", "price": "0.8000"}, {"price": "1.0000"}]}})
    _card(app, op, "100003")
    r = vending.vend(app, op, "100003", "100.00")  # 100 kWh for 80.00, then 20.00 buys 20 kWh
    assert r.energy == D("120.00") and r.credit_unit == unit
    assert r.credit == (D("120.00") if unit == CreditUnit.KWH else D("100.00"))
    image = cards.read_card(app, op).image
    assert image.vend.credit == r.credit and image.vend.unit == unit
    second = vending.vend(app, op, "100003", "10.00")  # the month already holds 120 kWh
    assert second.energy == D("10.00")
    assert second.credit == (D("10.00"))


def test_customer_on_an_uninstalled_tariff_is_refused_clearly(shop):
    app, op = shop
    _set_customer_tariff(app, "100001", "gone")
    _card(app, op, "100001")
    with pytest.raises(PluginError, match="unknown tariff 'gone'"):
        vending.vend(app, op, "100001", "10.00")
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(VendRow)) == 0


def test_period_start_in_a_configured_time_zone():
    at = datetime(2025, 3, 31, 22, 30, tzinfo=UTC)  # already April 1st in Nairobi (UTC+3)
    assert tariffs.period_start("month", at) == datetime(2025, 3, 1, tzinfo=UTC)
    nairobi = ZoneInfo("Africa/Nairobi")
    assert tariffs.period_start("month", at, nairobi) == datetime(2025, 3, 31, 21, tzinfo=UTC)
    assert tariffs.period_start("year", at, nairobi) == datetime(2024, 12, 31, 21, tzinfo=UTC)
    with pytest.raises(ConfigError):
        tariffs.period_start("week", at)
