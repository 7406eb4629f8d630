"""Finding customers, meters, cards and sales by what a clerk types, on both backends (SQLite
through the FTS5 trigram table, PostgreSQL through pg_trgm indexes), on the report data set."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from dbmis_core.errors import PermissionDenied, ValidationError
from dbmis_core.services import search
from dbmis_core.services.auth import Operator
from dbmis_core.storage.models import CustomerRow
from dbmis_core.testing.reports import seed


@pytest.fixture
def data(app, admin):
    seed(app)
    return app


def accounts(found):
    return [c.account_no for c in found.customers]


def test_partial_name_address_and_phone_match_anywhere_ignoring_case(data, admin):
    assert accounts(search.find(data, admin, "okaf")) == ["900001"]
    assert accounts(search.find(data, admin, "PETROV")) == ["900002"]
    assert sorted(accounts(search.find(data, admin, "elm st"))) == ["900001", "900005"]
    hit = search.find(data, admin, "0303").customers
    assert [(c.account_no, c.matched) for c in hit] == [("900003", "phone")]
    assert search.find(data, admin, "mill road", kind="customer").customers[0].matched == "name"
    assert search.find(data, admin, "zzzz").total == 0


def test_account_meter_card_and_receipt_numbers_match_from_their_start(data, admin):
    f = search.find(data, admin, "90000")
    assert accounts(f) == ["900001", "900002", "900003", "900004", "900005"]
    assert all(c.matched == "account" for c in f.customers)
    m = search.find(data, admin, "770000000003")
    assert [x.meter_no for x in m.meters] == ["770000000003"]
    assert accounts(m) == ["900003"] and m.customers[0].matched == "meter"
    cards = search.find(data, admin, "cafe0002", kind="card").cards
    assert [c.uid for c in cards] == ["CAFE0002", "CAFE0002B"]
    sales = search.find(data, admin, "s02-0000000", kind="sale").sales
    assert [s.receipt_no for s in sales][:3] == ["S02-00000001", "S02-00000002", "S02-00000003"]
    assert sales[0].account_no == "900002" and str(sales[0].amount) == "40.00"


def test_short_text_matches_names_from_the_start(data, admin):
    assert accounts(search.find(data, admin, "ko", kind="customer")) == ["900004"]


def test_the_text_index_follows_changes_to_customers(data, admin):
    with data.uow() as uow:
        uow.session.execute(update(CustomerRow).where(CustomerRow.account_no == "900005")
                            .values(name="Maria Oyelaran"))
        uow.session.add(CustomerRow(account_no="900099", name="Zed Quixote",
                                    category="residential"))
        uow.commit()
    assert accounts(search.find(data, admin, "oyela")) == ["900005"]
    assert search.find(data, admin, "santos").customers == []
    assert accounts(search.find(data, admin, "quixo")) == ["900099"]
    with data.uow() as uow:
        uow.session.delete(uow.session.scalar(select(CustomerRow).where(
            CustomerRow.account_no == "900099")))
        uow.commit()
    assert search.find(data, admin, "quixo").customers == []


def test_limit_wildcards_and_errors(data, admin):
    assert len(search.find(data, admin, "9", kind="customer", limit=2).customers) == 2
    assert search.find(data, admin, "%%%").total == 0
    assert search.find(data, admin, "_").total == 0
    with pytest.raises(ValidationError, match="type something"):
        search.find(data, admin, "   ")
    with pytest.raises(ValidationError, match="kind"):
        search.find(data, admin, "x", kind="dog")
    with pytest.raises(PermissionDenied):
        search.find(data, Operator("x", "X", "nobody"), "okafor")
