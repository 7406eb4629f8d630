"""A prepaid meter that consumes cards exactly as a real one would.

Rules (research/cards.md): a user card applies credit only when its sequence is the meter's last
sequence + 1; equal or lower credits nothing; a gap of two or more is refused. Cards of another meter,
cards not bound to this meter, and forged or moved records are refused and counted as illegal cards.
For its own cards the meter always writes its return data back. State is a JSON file, so a test, the
command line and the Qt host can share one meter.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import attrs

from dbmis_core.domain import CardType, MeterReturn
from dbmis_core.errors import CardFormatError, CardLockedError, WrongPscError
from dbmis_core.money import KWH_STEP

HISTORY_MONTHS = 24


@attrs.frozen
class InsertResult:
    accepted: bool
    applied: Decimal
    message: str
    return_written: bool


@attrs.define
class MeterState:
    meter_no: str
    key_hex: str
    clock: str  # ISO date of the meter's current day
    bound_uid: str | None = None
    last_sequence: int = 0
    remaining: str = "0.00"
    cumulative_purchased: str = "0.00"
    cumulative_consumed: str = "0.00"
    last_purchase: str = "0.00"
    tamper_count: int = 0
    illegal_card_count: int = 0
    relay_open: bool = True
    history: list[str] = attrs.Factory(lambda: ["0.00"] * HISTORY_MONTHS)


class MeterSimulator:
    def __init__(self, path: Path, state: MeterState) -> None:
        self.path = Path(path)
        self.state = state

    @classmethod
    def provision(cls, path: Path, meter_no: str, meter_key: bytes,
                  start: date | None = None) -> "MeterSimulator":
        """Install a new meter with its key (as a factory or the meter store would)."""
        st = MeterState(meter_no=meter_no, key_hex=meter_key.hex(),
                        clock=(start or datetime.now(UTC).date()).isoformat())
        sim = cls(path, st)
        sim.save()
        return sim

    @classmethod
    def load(cls, path: Path) -> "MeterSimulator":
        return cls(path, MeterState(**json.loads(Path(path).read_text())))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(attrs.asdict(self.state), indent=1))
        os.replace(tmp, self.path)

    # -- helpers -------------------------------------------------------------------------------
    @property
    def today(self) -> date:
        return date.fromisoformat(self.state.clock)

    @property
    def remaining(self) -> Decimal:
        return Decimal(self.state.remaining)

    def _status(self) -> int:
        s = 0
        rem, last = Decimal(self.state.remaining), Decimal(self.state.last_purchase)
        if self.state.relay_open:
            s |= MeterReturn.RELAY_OPEN
        if self.state.tamper_count:
            s |= MeterReturn.TAMPER
        if last > 0 and rem <= last / 10:
            s |= MeterReturn.LOW_CREDIT
        if rem < 0:
            s |= MeterReturn.OVERDRAFT
        return s

    def return_data(self) -> MeterReturn:
        st = self.state
        return MeterReturn(
            meter_no=st.meter_no, last_sequence=st.last_sequence, remaining=Decimal(st.remaining),
            cumulative_purchased=Decimal(st.cumulative_purchased),
            cumulative_consumed=Decimal(st.cumulative_consumed), status=self._status(),
            tamper_count=st.tamper_count, illegal_card_count=st.illegal_card_count,
            history_month=(self.today.year, self.today.month),
            history=tuple(Decimal(h) for h in st.history[:12]),
            written_at=datetime.combine(self.today, time(12, 0), UTC))

    # -- card insertion ------------------------------------------------------------------------
    def insert(self, conn, card_format) -> InsertResult:
        st = self.state
        key = bytes.fromhex(st.key_hex)
        try:
            uid, header, vend, slots = card_format.meter_read(conn, key, st.meter_no)
        except CardFormatError as exc:
            st.illegal_card_count += 1
            self.save()
            return InsertResult(False, Decimal(0), f"card refused: {exc}", False)
        if header.card_type not in (CardType.USER, CardType.REPLACEMENT):
            return InsertResult(False, Decimal(0), f"{header.card_type.name} cards are not handled "
                                "by this meter simulator yet", False)
        if st.bound_uid is None:
            if vend is not None:  # only a genuine (MAC-valid) record may bind a new meter
                st.bound_uid = uid
        elif st.bound_uid != uid:
            # headers carry no MAC: only a genuine vend record proves a replacement was issued
            if header.card_type != CardType.REPLACEMENT or vend is None:
                st.illegal_card_count += 1
                self.save()
                return InsertResult(False, Decimal(0), "card refused: not the card bound to this "
                                    "meter", False)
            st.bound_uid = uid
        forged = [s for s in slots if s.problem and "MAC" in s.problem]
        applied, message, accepted = Decimal(0), "", True
        if vend is None:
            message = "no vend on the card"
        elif vend.sequence == st.last_sequence + 1:
            applied = vend.credit
            st.last_sequence = vend.sequence
            st.remaining = str(Decimal(st.remaining) + applied)
            st.cumulative_purchased = str(Decimal(st.cumulative_purchased) + applied)
            st.last_purchase = str(applied)
            if Decimal(st.remaining) > 0:
                st.relay_open = False
            message = f"credit {applied} loaded (sequence {vend.sequence})"
        elif vend.sequence <= st.last_sequence:
            message = f"sequence {vend.sequence} already loaded; nothing credited"
        else:
            accepted = False
            message = (f"sequence {vend.sequence} skips purchases (meter is at "
                       f"{st.last_sequence}); refused")
        if forged:
            st.illegal_card_count += 1
            message += "; forged or moved record ignored"
        self.save()
        try:
            card_format.meter_write_return(conn, key, self.return_data())
        except (WrongPscError, CardLockedError):  # the card does not know this meter's PSC: forged
            st.illegal_card_count += 1
            self.save()
            return InsertResult(False, applied, message + "; card refused: PSC rejected", False)
        return InsertResult(accepted, applied, message, True)

    # -- consumption ---------------------------------------------------------------------------
    def run(self, days: int, daily_kwh: Decimal, profile=None) -> Decimal:
        """Advance ``days`` days consuming ``daily_kwh`` (or ``profile(day)``) while credit lasts."""
        st = self.state
        used_total = Decimal(0)
        for _ in range(days):
            day = self.today + timedelta(days=1)
            if day.month != self.today.month:
                st.history = ["0.00"] + st.history[:HISTORY_MONTHS - 1]
            # the meter registers whole hundredths of a kWh, the resolution of its return data
            want = Decimal(profile(day) if profile else daily_kwh).quantize(KWH_STEP, ROUND_DOWN)
            rem = Decimal(st.remaining)
            use = max(Decimal(0), min(want, rem))
            st.remaining = str(rem - use)
            st.cumulative_consumed = str(Decimal(st.cumulative_consumed) + use)
            st.history[0] = str(Decimal(st.history[0]) + use)
            st.relay_open = Decimal(st.remaining) <= 0
            st.clock = day.isoformat()
            used_total += use
        self.save()
        return used_total
