"""Money taken or paid out at the counter that is not a sale (card fees, refunds, debt payments).

Each entry takes the station's next receipt number, so sales and cash entries share one gapless
numbering per station; it is written in the caller's transaction.
"""

from __future__ import annotations

from decimal import Decimal

from ..money import money
from ..storage.models import CashEntryRow, CustomerRow
from .auth import Operator

KINDS = ("reissue_fee", "refund", "closure_refund", "transfer_out", "transfer_in", "debt_payment",
         "other")


def record_cash(uow, op: Operator, station: str, kind: str, amount: Decimal,
                customer_id: int | None = None, vend_id: int | None = None,
                note: str = "") -> CashEntryRow:
    """Add a cash entry (``amount`` > 0 received, < 0 paid out) with a new receipt number."""
    from ..errors import ValidationError
    from .vending import _next_receipt

    if kind not in KINDS:
        raise ValidationError(f"unknown cash entry kind {kind!r}; kinds: {', '.join(KINDS)}")
    amt = money(amount, "cash amount")
    if amt == 0:
        raise ValidationError("a cash entry needs a non-zero amount")
    row = CashEntryRow(kind=kind, amount=amt, customer_id=customer_id, vend_id=vend_id,
                       operator=op.login, station=station, receipt_no=_next_receipt(uow, station),
                       note=note)
    uow.session.add(row)
    uow.session.flush()
    from . import audit

    account = (uow.session.get(CustomerRow, customer_id).account_no
               if customer_id is not None else None)
    audit.record(uow, op, "cash", f"account {account}" if account else f"receipt {row.receipt_no}",
                 {"kind": kind, "amount": amt, "receipt": row.receipt_no, "vend_id": vend_id,
                  "note": note}, station=station)
    return row
