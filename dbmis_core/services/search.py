"""Find customers, meters, cards and sales by whatever a clerk types.

Numbers a clerk reads off paper (account, meter, card UID, receipt) match from their start, on
their unique indexes, as a range (``>= text AND < text + 1``) that every backend answers from the
index. Names, addresses and phone numbers match anywhere in the text, case-insensitively: on
SQLite through the FTS5 trigram table ``customers_fts`` (kept by triggers), on PostgreSQL through
pg_trgm GIN indexes under ``ILIKE``; both made by migration 0008. Text shorter than three
characters has no trigram, so it matches names from their start (docs/decisions/0014-reports.md).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import attrs
from sqlalchemy import or_, select, text

from ..errors import ValidationError
from ..storage.models import CardRow, CustomerRow, MeterRow, RegionRow, VendRow
from .auth import Operator, Perm

KINDS = ("customer", "meter", "card", "sale")
FTS_TABLE = "customers_fts"


@attrs.frozen
class CustomerHit:
    account_no: str
    name: str
    address: str
    phone: str
    category: str
    district: str
    status: str
    matched: str


@attrs.frozen
class MeterHit:
    meter_no: str
    model: str
    status: str
    account_no: str
    name: str


@attrs.frozen
class CardHit:
    uid: str
    card_type: int
    status: str
    account_no: str
    meter_no: str


@attrs.frozen
class SaleHit:
    receipt_no: str
    completed_at: datetime | None
    state: str
    account_no: str
    name: str
    amount: Decimal
    energy: Decimal
    operator: str
    station: str


@attrs.frozen
class Found:
    text: str
    customers: list[CustomerHit] = attrs.field(factory=list)
    meters: list[MeterHit] = attrs.field(factory=list)
    cards: list[CardHit] = attrs.field(factory=list)
    sales: list[SaleHit] = attrs.field(factory=list)

    @property
    def total(self) -> int:
        return len(self.customers) + len(self.meters) + len(self.cards) + len(self.sales)


def _prefix(column, value: str):
    """``column`` starts with ``value``, answerable from a b-tree index on any backend."""
    upper = value[:-1] + chr(ord(value[-1]) + 1)
    return (column >= value) & (column < upper)


def find(app, op: Operator, text_: str, kind: str | None = None, limit: int = 50) -> Found:
    """Everything matching ``text_`` (or only ``kind``), at most ``limit`` of each kind."""
    op.require(Perm.VIEW)
    q = " ".join((text_ or "").split())
    if not q:
        raise ValidationError("type something to search for")
    if kind is not None and kind not in KINDS:
        raise ValidationError(f"kind must be one of {', '.join(KINDS)}")
    want = KINDS if kind is None else (kind,)
    with app.uow() as uow:
        return Found(
            q,
            customers=find_customers(uow, q, limit) if "customer" in want else [],
            meters=_meters(uow, q, limit) if "meter" in want else [],
            cards=_cards(uow, q, limit) if "card" in want else [],
            sales=_sales(uow, q, limit) if "sale" in want else [])


def _customer_ids_by_text(uow, q: str, limit: int) -> list[int]:
    s = uow.session
    if len(q) < 3:
        return list(s.scalars(select(CustomerRow.id).where(
            CustomerRow.name.ilike(_escape(q) + "%", escape="\\")).limit(limit)))
    if s.get_bind().dialect.name == "sqlite":
        phrase = '"' + q.replace('"', '""') + '"'
        return [r[0] for r in s.execute(
            text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :q LIMIT :n"),
            {"q": phrase, "n": limit})]
    pattern = "%" + _escape(q) + "%"
    return list(s.scalars(select(CustomerRow.id).where(or_(
        CustomerRow.name.ilike(pattern, escape="\\"),
        CustomerRow.address.ilike(pattern, escape="\\"),
        CustomerRow.phone.ilike(pattern, escape="\\"))).limit(limit)))


def _escape(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def find_customers(uow, q: str, limit: int = 50) -> list[CustomerHit]:
    """Customers by account number (from its start), meter number (from its start), or any part
    of name, address or phone. Account matches come first."""
    s = uow.session
    hits: dict[int, str] = {}
    for cid in s.scalars(select(CustomerRow.id).where(_prefix(CustomerRow.account_no, q))
                         .order_by(CustomerRow.account_no).limit(limit)):
        hits.setdefault(cid, "account")
    if len(hits) < limit:
        for cid in s.scalars(select(MeterRow.customer_id).where(
                _prefix(MeterRow.meter_no, q), MeterRow.customer_id.is_not(None))
                .limit(limit - len(hits))):
            hits.setdefault(cid, "meter")
    if len(hits) < limit:
        for cid in _customer_ids_by_text(uow, q, limit - len(hits)):
            hits.setdefault(cid, "text")
    if not hits:
        return []
    rows = {r.id: r for r in s.execute(
        select(CustomerRow.id, CustomerRow.account_no, CustomerRow.name, CustomerRow.address,
               CustomerRow.phone, CustomerRow.category, CustomerRow.status, RegionRow.code)
        .outerjoin(RegionRow, RegionRow.id == CustomerRow.district_id)
        .where(CustomerRow.id.in_(list(hits))))}
    lowered = q.casefold()
    out = []
    for cid, how in hits.items():
        r = rows[cid]
        if how == "text":
            how = next((f for f in ("name", "address", "phone")
                        if lowered in (getattr(r, f) or "").casefold()), "name")
        out.append(CustomerHit(r.account_no, r.name, r.address, r.phone, r.category,
                               r.code or "", r.status, how))
    return out


def _meters(uow, q: str, limit: int) -> list[MeterHit]:
    from ..storage.models import MeterModelRow

    rows = uow.session.execute(
        select(MeterRow.meter_no, MeterModelRow.code, MeterRow.status, CustomerRow.account_no,
               CustomerRow.name)
        .join(MeterModelRow, MeterModelRow.id == MeterRow.model_id)
        .outerjoin(CustomerRow, CustomerRow.id == MeterRow.customer_id)
        .where(_prefix(MeterRow.meter_no, q)).order_by(MeterRow.meter_no).limit(limit))
    return [MeterHit(m, code, st, a or "", n or "") for m, code, st, a, n in rows]


def _cards(uow, q: str, limit: int) -> list[CardHit]:
    rows = uow.session.execute(
        select(CardRow.uid, CardRow.card_type, CardRow.status, CustomerRow.account_no,
               MeterRow.meter_no)
        .outerjoin(CustomerRow, CustomerRow.id == CardRow.customer_id)
        .outerjoin(MeterRow, MeterRow.id == CardRow.meter_id)
        .where(_prefix(CardRow.uid, q.upper())).order_by(CardRow.uid).limit(limit))
    return [CardHit(u, t, st, a or "", m or "") for u, t, st, a, m in rows]


def _sales(uow, q: str, limit: int) -> list[SaleHit]:
    rows = uow.session.execute(
        select(VendRow.receipt_no, VendRow.completed_at, VendRow.state, CustomerRow.account_no,
               CustomerRow.name, VendRow.amount, VendRow.energy, VendRow.operator,
               VendRow.station)
        .join(CustomerRow, CustomerRow.id == VendRow.customer_id)
        .where(_prefix(VendRow.receipt_no, q.upper())).order_by(VendRow.receipt_no).limit(limit))
    return [SaleHit(*r) for r in rows]
