"""Card tools on SQLite and PostgreSQL: logged service cards, reading any card, importing meter data."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from dbmis_core.cards import ANY_METER, CardHeader, PresetCommand, ServiceCardImage
from dbmis_core.domain import CardType
from dbmis_core.errors import (
    BusinessRuleError,
    CardRemovedError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from dbmis_core.services import cardtools, cards, vending
from dbmis_core.keys import KeyStore
from dbmis_core.services.auth import create_operator
from dbmis_core.storage.models import MeterReturnRow, MeterRow, ServiceCardRow
from dbmis_refcard.format import RefCardFormat
from dbmis_sim.meter import MeterSimulator
from dbmis_sim.sle4442 import Faults

METER_1, METER_2, METER_3 = "000020240001", "000020240002", "000020240003"
ACCOUNTS = {METER_1: "100001", METER_2: "100002", METER_3: "100003"}
ALL_TYPES = [
    ("test", None, {"credit": "2.00", "uses": "2"}),
    ("check", METER_1, {}),
    ("set", None, {"alarm1": "20", "alarm2": "5", "hoarding_limit": "500", "power_limit_w": "4400"}),
    ("set", METER_2, {"overdraft_limit": "10.00"}),
    ("clear", METER_1, {}),
    ("preset", None, {"credit": "15.00"}),
    ("meter_reading", None, {"route": "R1-L1-T1"}),
    ("management", METER_3, {"action": "suspend"}),
]


@pytest.fixture
def tech(demo):
    with demo.uow() as uow:
        create_operator(uow, "tom", "Tom Technician", "tech-pass-1", "technician")
        create_operator(uow, "ann", "Ann Auditor", "audit-pass-1", "auditor")
        uow.commit()
    return demo.login("tom", "tech-pass-1")


def meter_sim(app, meter_no: str) -> MeterSimulator:
    path = app.config.home / "meters" / f"{meter_no}.json"
    if path.exists():
        return MeterSimulator.load(path)
    return MeterSimulator.provision(path, meter_no, app.keys.meter_key(meter_no),
                                    service_key=app.keys.service_key())


def insert_into(app, meter_no: str):
    sim = meter_sim(app, meter_no)
    with cards.connected(app) as conn:
        return sim.insert(conn, app.card_format)


def customer_buys(app, meter_no: str, amount: str = "56.00", days: int = 10) -> str:
    """Issue a card, sell, load it into the meter and let the meter run; returns the card UID."""
    clerk = app.login("clerk", "clerk-demo-1")
    app.reader.new_card()
    uid = cards.issue_user_card(app, clerk, ACCOUNTS[meter_no])
    vending.vend(app, clerk, ACCOUNTS[meter_no], amount)
    assert insert_into(app, meter_no).accepted
    meter_sim(app, meter_no).run(days, Decimal(2))
    return uid


def write(app, op, card_type, meter=None, **params):
    app.reader.new_card()
    return cardtools.write_service_card(app, op, card_type, meter, **params)


def log_rows(app) -> list[ServiceCardRow]:
    with app.uow() as uow:
        return list(uow.session.scalars(select(ServiceCardRow).order_by(ServiceCardRow.id)))


def returns_of(app, meter_no: str) -> list[MeterReturnRow]:
    with app.uow() as uow:
        meter = uow.session.scalar(select(MeterRow).where(MeterRow.meter_no == meter_no))
        return list(uow.session.scalars(select(MeterReturnRow).where(
            MeterReturnRow.meter_id == meter.id).order_by(MeterReturnRow.written_at)))


def test_every_service_card_written_is_logged(demo, tech):
    start = datetime.now(UTC) - timedelta(seconds=1)
    written = [write(demo, tech, t, m, **p) for t, m, p in ALL_TYPES]
    rows = log_rows(demo)
    assert [r.uid for r in rows] == [w.uid for w in written]
    for row, (ctype, meter, params) in zip(rows, ALL_TYPES):
        assert CardType(row.card_type) == cardtools.service_type(ctype)
        assert (row.operator, row.station) == ("tom", "S01")
        assert start <= row.written_at <= datetime.now(UTC)
        assert row.targets == ([meter] if meter else "any")
        for name, typed in params.items():
            logged = row.parameters[name]
            assert logged == typed if name in ("route", "action") else Decimal(logged) == Decimal(typed)
    assert rows[2].parameters["version"] == 1 and rows[3].parameters["version"] == 2
    assert rows[2].parameters["price"] == "0.0000" and rows[2].parameters["power_limit_w"] == 4400
    assert rows[0].parameters == {"credit": "2.00", "uses": 2}
    log = cardtools.service_card_log(demo, tech)
    assert [e.uid for e in log] == [w.uid for w in reversed(written)]
    assert [e.uid for e in cardtools.service_card_log(demo, tech, card_type="set")] == [
        written[3].uid, written[2].uid]


def test_the_card_carries_what_the_log_says(demo, tech):
    w = write(demo, tech, "set", None, alarm1="12.50", price="0.5600")
    desc = cardtools.describe_any_card(demo, tech)
    assert desc.kind == "service" and isinstance(desc.image, ServiceCardImage)
    params = desc.image.command.params
    assert (params.alarm1, params.price, params.version) == (Decimal("12.50"), Decimal("0.56"), 1)
    assert desc.image.header.meter_no == ANY_METER
    assert desc.database["written_by"] == "tom" and desc.database["parameters"] == w.parameters
    assert {a.name: a.status for a in desc.areas}["command"] == "valid"
    assert desc.warnings == () and desc.tries_left == 3
    plain = cardtools.description_dict(desc)
    assert plain["header"]["meter_no"] == "any" and plain["command"]["params"]["version"] == 1
    assert plain["answers"] == [] and list(plain["raw"])[:2] == ["0x00", "0x10"]


@pytest.mark.parametrize("role", ["clerk", "auditor"])
def test_only_permitted_roles_write_service_cards(demo, tech, role):
    op = demo.login("clerk", "clerk-demo-1") if role == "clerk" else demo.login("ann", "audit-pass-1")
    demo.reader.new_card()
    with pytest.raises(PermissionDenied, match="write_service_cards"):
        cardtools.write_service_card(demo, op, "test")
    assert log_rows(demo) == []
    assert cardtools.describe_any_card(demo, op).kind == "blank"
    with pytest.raises(PermissionDenied):
        cardtools.import_service_card_data(demo, op)


@pytest.mark.parametrize("card_type,meter,params,error,match", [
    ("check", None, {}, ValidationError, "for one meter"),
    ("management", METER_1, {"action": "pause"}, ValidationError, "suspend"),
    ("test", None, {"uses": "9"}, ValidationError, "from 1 to 8"),
    ("test", None, {"credit": "500"}, ValidationError, "at most 20"),
    ("preset", None, {"credit": "1.001"}, ValidationError, "more than 2 decimals"),
    ("set", None, {"alarm1": "5", "alarm2": "9"}, ValidationError, "lower one"),
    ("set", None, {"price": "0.12345"}, ValidationError, "more than 4 decimals"),
    ("set", None, {"colour": "red"}, ValidationError, "takes alarm1"),
    ("set", None, {"price": "1e30"}, ValidationError, "too large"),
    ("set", None, {"hoarding_limit": "42949672.96"}, ValidationError, "too large"),
    ("preset", None, {"credit": "ten"}, ValidationError, "not a number"),
    ("clear", "999999999", {}, NotFound, "999999999"),
    (CardType.USER, METER_1, {}, ValidationError, "not a service card"),
    ("bogus", None, {}, ValidationError, "unknown service card type"),
])
def test_bad_requests_change_nothing(demo, tech, card_type, meter, params, error, match):
    demo.reader.new_card()
    with pytest.raises(error, match=match):
        cardtools.write_service_card(demo, tech, card_type, meter, **params)
    assert log_rows(demo) == []
    assert cardtools.describe_any_card(demo, tech).kind == "blank"


def test_only_a_blank_card_becomes_a_service_card(demo, tech):
    user = customer_buys(demo, METER_1)
    demo.reader.insert(user)
    with pytest.raises(ValidationError, match="already in use"):
        cardtools.write_service_card(demo, tech, "check", METER_1)
    first = write(demo, tech, "preset", None, credit="5")
    demo.reader.insert(first.uid)
    with pytest.raises(ValidationError, match="already in use"):
        cardtools.write_service_card(demo, tech, "preset", credit="5")
    assert [r.uid for r in log_rows(demo)] == [first.uid]


def test_a_card_pulled_while_written_leaves_no_log_row_and_can_be_used_again(demo, tech):
    uid = demo.reader.new_card()
    demo.reader.inject(Faults(pull_after_bytes=30))
    with pytest.raises(CardRemovedError):
        cardtools.write_service_card(demo, tech, "meter_reading", route="R2")
    assert log_rows(demo) == []
    demo.reader.insert(uid)
    assert cardtools.write_service_card(demo, tech, "meter_reading", route="R2").uid == uid
    assert [r.uid for r in log_rows(demo)] == [uid]


def test_check_card_data_is_imported_once(demo, tech):
    customer_buys(demo, METER_1, days=10)
    check = write(demo, tech, "check", METER_1)
    assert insert_into(demo, METER_1).return_written
    desc = cardtools.describe_any_card(demo, tech)
    [meter] = desc.database["meters"]
    assert meter["data_imported"] is False and meter["account_no"] == "100001"
    result = cardtools.import_service_card_data(demo, tech)
    assert [(m, a) for m, a, _ in result.imported] == [(METER_1, "100001")]
    assert result.parameter_versions == ((METER_1, 0),) and result.already == ()
    again = cardtools.import_service_card_data(demo, tech)
    assert again.imported == () and len(again.already) == 1
    [row] = returns_of(demo, METER_1)
    assert (row.source, row.cumulative_consumed, row.remaining) == ("check", 20, Decimal(80))
    assert row.consumed_since_previous == 20 and len(row.history) == 12
    assert cardtools.describe_any_card(demo, tech).database["meters"][0]["data_imported"] is True
    [logged] = [r for r in log_rows(demo) if r.uid == check.uid]
    assert logged.imported_by == "tom" and logged.imported_at is not None


def test_meter_reading_route_is_imported_for_several_customers(demo, tech):
    user_cards = [customer_buys(demo, meter, days=5 + i)
                  for i, meter in enumerate((METER_1, METER_2, METER_3))]
    write(demo, tech, "meter_reading", route="R1-L1")
    for meter in (METER_1, METER_2, METER_3):
        assert insert_into(demo, meter).accepted
    result = cardtools.import_service_card_data(demo, tech)
    assert sorted((m, a) for m, a, _ in result.imported) == [
        (METER_1, "100001"), (METER_2, "100002"), (METER_3, "100003")]
    consumed = {m: returns_of(demo, m)[0].cumulative_consumed for m in ACCOUNTS}
    assert consumed == {METER_1: 10, METER_2: 12, METER_3: 14}
    assert all(returns_of(demo, m)[0].source == "meter_reading" for m in ACCOUNTS)
    assert cardtools.import_service_card_data(demo, tech).imported == ()
    assert cardtools.describe_any_card(demo, tech).database["imported_by"] == "tom"
    # the customer's own card, read later, measures consumption from the reading
    meter_sim(demo, METER_1).run(3, Decimal(2))
    demo.reader.insert(user_cards[0])
    insert_into(demo, METER_1)
    cards.read_card(demo, demo.login("clerk", "clerk-demo-1"))
    latest = returns_of(demo, METER_1)[-1]
    assert (latest.source, latest.consumed_since_previous) == ("user", 6)


def test_set_card_answers_record_parameter_versions(demo, tech):
    write(demo, tech, "set", None, alarm1="10")
    for meter in (METER_1, METER_2):
        assert insert_into(demo, meter).accepted
    result = cardtools.import_service_card_data(demo, tech)
    assert sorted(result.parameter_versions) == [(METER_1, 1), (METER_2, 1)]
    with demo.uow() as uow:
        versions = dict(uow.session.execute(select(MeterRow.meter_no, MeterRow.parameter_version))
                        .all())
    assert (versions[METER_1], versions[METER_2], versions[METER_3]) == (1, 1, None)


def test_clear_card_brings_back_the_data_from_before_the_reset(demo, tech):
    customer_buys(demo, METER_2, days=4)
    write(demo, tech, "clear", METER_2)
    assert insert_into(demo, METER_2).message.startswith("meter cleared")
    assert meter_sim(demo, METER_2).state.last_sequence == 0
    result = cardtools.import_service_card_data(demo, tech)
    assert [m for m, _, _ in result.imported] == [METER_2] and "sequence 0" in result.notes[0]
    [row] = returns_of(demo, METER_2)
    assert (row.source, row.last_sequence, row.cumulative_consumed) == ("clear", 1, 8)


def test_cards_without_data_to_import_are_refused(demo, tech):
    customer_buys(demo, METER_1)
    with pytest.raises(BusinessRuleError, match="user card"):
        cardtools.import_service_card_data(demo, tech)
    write(demo, tech, "test")
    with pytest.raises(BusinessRuleError, match="no meter data"):
        cardtools.import_service_card_data(demo, tech)


def test_describe_shows_user_cards_and_forgeries(demo, tech, tmp_path):
    uid = customer_buys(demo, METER_1, days=2)
    demo.reader.insert(uid)
    insert_into(demo, METER_1)
    desc = cardtools.describe_any_card(demo, tech)
    assert desc.kind == "user" and desc.database["account_no"] == "100001"
    assert {a.name: a.status for a in desc.areas} == {
        "vend slot A": "valid", "vend slot B": "empty", "return data": "valid"}
    plain = cardtools.description_dict(desc)
    assert plain["return"]["cumulative_consumed"] == Decimal(4)
    assert plain["return"]["status_flags"] == []
    # a card of another utility (other master secret) is readable but nothing on it checks out
    foreign = demo.reader.new_card()
    with closing(demo.reader.connect()) as conn:
        RefCardFormat(KeyStore({1: b"x" * 32}, 1)).write_service(
            conn, CardHeader(CardType.PRESET, 1, ANY_METER, "0000"), PresetCommand(Decimal(900)),
            datetime.now(UTC))
    desc = cardtools.describe_any_card(demo, tech)
    assert desc.uid == foreign and desc.image.command is None
    assert {a.name: a.status for a in desc.areas}["command"] == "forged or moved (MAC mismatch)"
    assert "not in this database's service-card log" in desc.warnings[0]
