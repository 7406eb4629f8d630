"""Issuing and reading user cards. Drivers move bytes, the card format decodes them."""

from __future__ import annotations

from contextlib import contextmanager

import attrs
from sqlalchemy import select

from ..cards import CardHeader, CardImage
from ..domain import CardStatus, CardType
from ..errors import BusinessRuleError, CardFormatError, NotFound, ValidationError
from ..storage.models import CardRow, UtilityRow
from .auth import Operator, Perm
from .registry import current_meter, get_customer_row


@contextmanager
def connected(app):
    conn = app.reader.connect()
    try:
        yield conn
    finally:
        conn.close()


def utility_numeric_code(uow) -> int:
    u = uow.session.scalar(select(UtilityRow))
    return u.numeric_code if u else 1


def meter_key_version(app, meter) -> int:
    """The key version of ``meter`` (a MeterRow): fixed by its first card, the current version then.

    A meter cannot learn a new key from a card, so after a key rotation the cards of an installed
    meter keep using the version it was keyed with; new meters get the new version."""
    if meter.key_version is None:
        meter.key_version = app.keys.current_version
    return meter.key_version


def issue_user_card(app, op: Operator, account_no: str) -> str:
    """Personalise the blank card in the reader for the customer's meter; returns its UID."""
    op.require(Perm.ISSUE_CARD)
    with app.uow() as uow:
        customer = get_customer_row(uow, account_no)
        meter = current_meter(uow, customer)
        if meter is None:
            raise BusinessRuleError(f"customer {account_no} has no installed meter; install one first")
        active = uow.session.scalar(select(CardRow).where(
            CardRow.customer_id == customer.id, CardRow.status == CardStatus.ACTIVE.value,
            CardRow.card_type == int(CardType.USER)))
        if active is not None:
            raise BusinessRuleError(f"customer {account_no} already has active card {active.uid}; "
                                    "a lost card is reissued, not issued again")
        header = CardHeader(CardType.USER, utility_numeric_code(uow), meter.meter_no,
                            customer.account_no, meter_key_version(app, meter))
        with connected(app) as conn:
            uid = app.card_format.read_uid(conn)
            if uow.session.scalar(select(CardRow).where(CardRow.uid == uid)):
                raise ValidationError(f"card {uid} is already registered; insert a blank card")
            app.card_format.personalise(conn, header)
        uow.session.add(CardRow(uid=uid, card_type=int(CardType.USER), status=CardStatus.ACTIVE.value,
                                meter=meter, customer=customer, key_version=header.key_version,
                                issued_by=op.login))
        from . import audit

        audit.record(uow, op, "card.issue", f"account {customer.account_no}",
                     {"card": uid, "meter": meter.meter_no, "key_version": header.key_version})
        uow.commit()
    return uid


@attrs.frozen
class CardReport:
    """A card as read, and what the database knows of it."""

    image: CardImage
    registered: bool
    status: str | None
    account_no: str | None
    meter_no: str | None
    db_last_sequence: int | None
    warnings: tuple[str, ...]


def read_card(app, op: Operator, record: bool = True) -> CardReport:
    """Read the card in the reader; store any new meter return data it carries, when the operator
    may change meter data (a read-only auditor's reading stores nothing)."""
    op.require(Perm.READ_CARD)
    with connected(app) as conn:
        image = app.card_format.read(conn)
    record = record and (op.can(Perm.RECONCILE) or op.can(Perm.MANAGE_METERS))
    with app.uow() as uow:
        report = describe(uow, image)
        if record and report.registered and image.returned is not None:
            from .vending import record_return

            record_return(uow, op, image)
            uow.commit()
    return report


def describe(uow, image: CardImage) -> CardReport:
    row = uow.session.scalar(select(CardRow).where(CardRow.uid == image.uid))
    warnings = []
    if row is None:
        return CardReport(image, False, None, image.header.account_no, image.header.meter_no, None,
                          ("card is not registered in this database",))
    if row.meter is None or row.meter.meter_no != image.header.meter_no:
        warnings.append("card header names another meter than the database")
    db_seq = row.meter.last_sequence if row.meter else None
    card_seq = image.vend.sequence if image.vend else 0
    if db_seq is not None and card_seq > db_seq:
        warnings.append(f"card holds sequence {card_seq}, ahead of the database ({db_seq})")
    for slot in image.slots:
        if slot.problem and "MAC" in slot.problem:
            warnings.append(f"slot {slot.name}: {slot.problem}")
    if image.return_problem and not image.return_problem.startswith("empty"):
        warnings.append(f"return data: {image.return_problem}")
    if row.status != CardStatus.ACTIVE.value:
        warnings.append(f"card is {row.status}")
    return CardReport(image, True, row.status, row.customer.account_no if row.customer else None,
                      row.meter.meter_no if row.meter else None, db_seq, tuple(warnings))


def card_row(uow, uid: str) -> CardRow:
    row = uow.session.scalar(select(CardRow).where(CardRow.uid == uid))
    if row is None:
        raise NotFound(f"card {uid} is not registered")
    return row


def ensure_user_card(image: CardImage) -> None:
    if image.header.card_type not in (CardType.USER, CardType.REPLACEMENT):
        raise CardFormatError(f"this is a {image.header.card_type.name.lower()} card, not a user card")
