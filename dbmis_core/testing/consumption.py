"""Two years of meter returns and purchases for the demo customers, with known anomalies, for tests
of the consumption module (services, command line and Qt page all use the same story).

Returns go in through ``vending.store_return`` exactly as the counter stores them; the purchases
are completed sale rows on a user card of each customer. The story (month 0 = 24 months before
``END``):

- 100001, 100006 (first half): honest households;
- 100002: honest, but one month (month 14) at 40% of normal use - a holiday, not a finding;
- 100003: a shop whose use drops to 30% from month 18 on - a persistent abnormal drop;
- 100004: the register goes backwards once (month 16);
- 100005: a pump whose tamper counter rises in month 20;
- 100006: from month 19 no use is recorded while it keeps buying (stuck register or bypass).
"""

from __future__ import annotations

import math
import random
from calendar import monthrange
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from ..domain import CardStatus, CardType, CreditUnit, MeterReturn
from ..storage.models import CardRow, CustomerRow, MeterRow, VendRow
from ..services.vending import store_return

END = (2026, 10)   # the first month after the story; its returns are the last ones
MONTHS = 24
BASE = {"100001": 220, "100002": 260, "100003": 1500, "100004": 180, "100005": 700,
        "100006": 240}
DIP_MONTH, DROP_FROM, BACK_MONTH, TAMPER_MONTH, STUCK_FROM = 14, 18, 16, 20, 19


def month_starts(end: tuple[int, int] = END, months: int = MONTHS) -> list[tuple[int, int]]:
    y, m = end
    out = []
    for _ in range(months):
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        out.append((y, m))
    return out[::-1]


def use_of(account: str, t: int, month: int, rng: random.Random) -> float:
    season = 1 + 0.15 * math.cos(2 * math.pi * (month - 1) / 12)
    x = BASE[account] * season * rng.uniform(0.93, 1.07)
    if account == "100002" and t == DIP_MONTH:
        x *= 0.4
    if account == "100003" and t >= DROP_FROM:
        x *= 0.3
    if account == "100006" and t >= STUCK_FROM:
        x = 0.0
    return round(x, 2)


def seed_history(app, op, end: tuple[int, int] = END, seed: int = 5) -> dict[str, list[float]]:
    """Write the story into the database; returns each customer's true monthly use."""
    rng = random.Random(seed)
    months = month_starts(end)
    truth: dict[str, list[float]] = {}
    with app.uow() as uow:
        s = uow.session
        for account in BASE:
            c = s.scalar(select(CustomerRow).where(CustomerRow.account_no == account))
            meter = s.scalar(select(MeterRow).where(MeterRow.customer_id == c.id,
                                                    MeterRow.status == "installed"))
            card = CardRow(uid=f"C0{account}00000000", card_type=int(CardType.USER),
                           status=CardStatus.ACTIVE.value, meter_id=meter.id, customer_id=c.id,
                           issued_by=op.login)
            s.add(card)
            s.flush()
            uses = [use_of(account, t, m, rng) for t, (_, m) in enumerate(months)]
            truth[account] = uses
            consumed = Decimal("0")
            purchased = Decimal("0")
            history = [Decimal("0")] * 12
            tamper = 0
            seq = meter.last_sequence
            for t, ((y, m), use) in enumerate(zip(months, uses)):
                days = monthrange(y, m)[1]
                # buy early in the month, about what will be used (also when nothing registers)
                bought = Decimal(f"{max(use, BASE[account] * 0.9) * 1.05:.2f}")
                seq += 1
                at = datetime(y, m, 3, 10, 0, tzinfo=UTC)
                s.add(VendRow(customer_id=c.id, meter_id=meter.id, card_id=card.id, sequence=seq,
                              amount=bought, energy=bought, credit=bought,
                              credit_unit=int(CreditUnit.KWH), tariff="flat",
                              unit_price=Decimal("1.0000"), price_lines=[], operator=op.login,
                              station="S01", state="completed", issued_at=at, created_at=at,
                              written_at=at, completed_at=at, receipt_no=f"T{account}-{t:03d}"))
                purchased += bought
                # the card goes into the meter on the 20th: the month so far and the months before
                part = Decimal(f"{use * 20 / days:.2f}")
                history = [part] + history[:11]
                reading = consumed + part
                if account == "100004" and t == BACK_MONTH:
                    reading -= Decimal("400")
                if account == "100005" and t == TAMPER_MONTH:
                    tamper += 1
                ret = MeterReturn(meter_no=meter.meter_no, last_sequence=seq,
                                  remaining=Decimal("5.00"), cumulative_purchased=purchased,
                                  cumulative_consumed=reading, status=0, tamper_count=tamper,
                                  illegal_card_count=0, history_month=(y, m),
                                  history=tuple(history),
                                  written_at=datetime(y, m, 20, 12, 0, tzinfo=UTC))
                store_return(uow, op, meter.id, c.id, ret)
                consumed += Decimal(f"{use:.2f}")
                history[0] = Decimal(f"{use:.2f}")
            # the first days of the end month: a last return that completes the last month
            ey, em = end
            history = [Decimal("1.00")] + history[:11]
            ret = MeterReturn(meter_no=meter.meter_no, last_sequence=seq, remaining=Decimal("5.00"),
                              cumulative_purchased=purchased,
                              cumulative_consumed=consumed + Decimal("1.00"), status=0,
                              tamper_count=tamper, illegal_card_count=0, history_month=(ey, em),
                              history=tuple(history),
                              written_at=datetime(ey, em, 1, 13, 0, tzinfo=UTC))
            store_return(uow, op, meter.id, c.id, ret)
            meter.last_sequence = seq
        uow.commit()
    return truth
