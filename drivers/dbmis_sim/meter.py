"""A prepaid meter that consumes cards exactly as a real one would.

Rules (research/cards.md): a user card applies credit only when its sequence is the meter's last
sequence + 1; equal or lower credits nothing; a gap of two or more is refused. Cards of another meter,
cards not bound to this meter, and forged or moved records are refused and counted as illegal cards.
For its own cards the meter always writes its return data back. State is a JSON file, so a test, the
command line and the Qt host can share one meter.

Service cards (docs/decisions/0005-service-cards.md): a forged, moved or foreign service card is refused
and counted like a user card. Otherwise the meter answers on the card first and changes its own state
only after the answer is on the card, so a pulled card never leaves a change the card cannot show.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path

import attrs

from dbmis_core.cards import MeterParameters, MeterReading, MeterSnapshot, ServiceMark
from dbmis_core.domain import CardType, MeterReturn
from dbmis_core.errors import CardError, CardFormatError, CardLockedError, WrongPscError
from dbmis_core.money import CENT, KWH_STEP

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
    service_key_hex: str | None = None
    # parameters from set cards; "0" means the limit is not used
    alarm1: str = "0.00"
    alarm2: str = "0.00"
    hoarding_limit: str = "0.00"
    overdraft_limit: str = "0.00"
    power_limit_w: int = 0
    price: str = "0.0000"  # per kWh: a money meter deducts consumption times price
    param_version: int = 0
    preset_owed: str = "0.00"
    ever_preset: bool = False
    suspended: bool = False
    test_uses: int = 0
    retired_uids: list[str] = attrs.Factory(list)  # replaced or cleared away: never accepted again


class MeterSimulator:
    def __init__(self, path: Path, state: MeterState) -> None:
        self.path = Path(path)
        self.state = state

    @classmethod
    def provision(cls, path: Path, meter_no: str, meter_key: bytes, start: date | None = None,
                  service_key: bytes | None = None) -> "MeterSimulator":
        """Install a new meter with its keys (as a factory or the meter store would); a meter
        without the service key refuses batch service cards."""
        st = MeterState(meter_no=meter_no, key_hex=meter_key.hex(),
                        clock=(start or datetime.now(UTC).date()).isoformat(),
                        service_key_hex=service_key.hex() if service_key else None)
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

    @property
    def now(self) -> datetime:
        """The meter's clock has a resolution of one day (noon, UTC)."""
        return datetime.combine(self.today, time(12, 0), UTC)

    def _status(self) -> int:
        st, s = self.state, 0
        rem, last = Decimal(st.remaining), Decimal(st.last_purchase)
        alarm1, alarm2 = Decimal(st.alarm1), Decimal(st.alarm2)
        if st.relay_open:
            s |= MeterReturn.RELAY_OPEN
        if st.tamper_count:
            s |= MeterReturn.TAMPER
        if (rem <= alarm1) if alarm1 > 0 else (last > 0 and rem <= last / 10):
            s |= MeterReturn.LOW_CREDIT
        if alarm2 > 0 and rem <= alarm2:
            s |= MeterReturn.ALARM2
        if rem < 0:
            s |= MeterReturn.OVERDRAFT
        if st.suspended:
            s |= MeterReturn.SUSPENDED
        return s

    def _settle_relay(self) -> None:
        """Supply flows while credit (plus any allowed overdraft) lasts and supply is not suspended."""
        st = self.state
        st.relay_open = st.suspended or Decimal(st.remaining) + Decimal(st.overdraft_limit) <= 0

    def parameters(self) -> MeterParameters:
        st = self.state
        return MeterParameters(Decimal(st.alarm1), Decimal(st.alarm2), Decimal(st.hoarding_limit),
                               Decimal(st.overdraft_limit), st.power_limit_w, Decimal(st.price),
                               st.param_version)

    def snapshot(self) -> MeterSnapshot:
        st = self.state
        return MeterSnapshot(self.return_data(), self.parameters(), Decimal(st.preset_owed),
                             st.suspended, st.test_uses)

    def return_data(self) -> MeterReturn:
        st = self.state
        return MeterReturn(
            meter_no=st.meter_no, last_sequence=st.last_sequence, remaining=Decimal(st.remaining),
            cumulative_purchased=Decimal(st.cumulative_purchased),
            cumulative_consumed=Decimal(st.cumulative_consumed), status=self._status(),
            tamper_count=st.tamper_count, illegal_card_count=st.illegal_card_count,
            history_month=(self.today.year, self.today.month),
            history=tuple(Decimal(h) for h in st.history[:12]), written_at=self.now)

    # -- card insertion ------------------------------------------------------------------------
    def _refuse(self, why: str) -> InsertResult:
        """A card that is not genuinely for this meter: refused and counted as illegal."""
        self.state.illegal_card_count += 1
        self.save()
        return InsertResult(False, Decimal(0), f"card refused: {why}", False)

    def insert(self, conn, card_format) -> InsertResult:
        st = self.state
        key = bytes.fromhex(st.key_hex)
        try:
            if card_format.read_header(conn).card_type.is_service:
                return self._insert_service(conn, card_format)
            uid, header, vend, slots = card_format.meter_read(conn, key, st.meter_no)
        except CardFormatError as exc:
            return self._refuse(str(exc))
        if uid in st.retired_uids:
            return self._refuse("this card was replaced or its meter cleared")
        if st.bound_uid is None:
            if vend is not None:  # only a genuine (MAC-valid) record may bind a new meter
                st.bound_uid = uid
        elif st.bound_uid != uid:
            # headers carry no MAC: only a genuine vend record proves a replacement was issued
            if header.card_type != CardType.REPLACEMENT or vend is None:
                return self._refuse("not the card bound to this meter")
            st.retired_uids.append(st.bound_uid)
            st.bound_uid = uid
        forged = [s for s in slots if s.problem and "MAC" in s.problem]
        applied, message, accepted = Decimal(0), "", True
        if vend is None:
            message = "no vend on the card"
        elif vend.sequence == st.last_sequence + 1:
            owed = min(Decimal(st.preset_owed), vend.credit)  # the preset is repaid first
            hoard = Decimal(st.hoarding_limit)
            if hoard > 0 and Decimal(st.remaining) + vend.credit - owed > hoard:
                accepted = False
                message = (f"sequence {vend.sequence} refused: {vend.credit} would take the credit "
                           f"above the hoarding limit {hoard}")
            else:
                applied = vend.credit - owed
                st.last_sequence = vend.sequence
                st.remaining = str(Decimal(st.remaining) + applied)
                st.cumulative_purchased = str(Decimal(st.cumulative_purchased) + vend.credit)
                st.last_purchase = str(vend.credit)
                st.preset_owed = str(Decimal(st.preset_owed) - owed)
                self._settle_relay()
                message = f"credit {applied} loaded (sequence {vend.sequence})"
                if owed:
                    message += f"; preset {owed} repaid"
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

    # -- service cards -------------------------------------------------------------------------
    def _insert_service(self, conn, fmt) -> InsertResult:
        st = self.state
        keys = (bytes.fromhex(st.key_hex),
                bytes.fromhex(st.service_key_hex) if st.service_key_hex else None, st.meter_no)
        image = fmt.meter_read_service(conn, *keys)
        if image.command is None:
            return self._refuse(f"service command {image.command_problem}")
        handler = getattr(self, f"_card_{image.header.card_type.name.lower()}")
        before = copy.deepcopy(st)
        try:
            result = handler(image, lambda answer: self._answer(conn, fmt, keys, answer))
        except (WrongPscError, CardLockedError):  # a genuine card knows the PSC its keys give
            self.state = before
            return self._refuse("PSC rejected")
        except CardError as exc:  # pulled, or no room left: nothing changes in the meter
            self.state = before
            return InsertResult(False, Decimal(0), f"{image.header.card_type.name.lower()} card "
                                f"not answered: {exc}", False)
        if self.state != before:
            self.save()
        return result

    @staticmethod
    def _answer(conn, fmt, keys, answer) -> None:
        if isinstance(answer, MeterSnapshot):
            fmt.meter_write_snapshot(conn, *keys, answer)
        else:
            fmt.meter_write_entry(conn, *keys, answer)

    def _card_test(self, image, answer) -> InsertResult:
        cmd, st = image.command, self.state
        used = len(image.answers)
        if used >= cmd.max_uses:
            return InsertResult(False, Decimal(0), f"test card used up ({used} of {cmd.max_uses} "
                                "uses)", False)
        answer(ServiceMark(st.meter_no, used + 1, self.now))
        st.remaining = str(Decimal(st.remaining) + cmd.credit)
        st.test_uses += 1
        self._settle_relay()
        return InsertResult(True, cmd.credit, f"test credit {cmd.credit} loaded (use {used + 1} of "
                            f"{cmd.max_uses})", True)

    def _card_check(self, image, answer) -> InsertResult:
        answer(self.snapshot())
        return InsertResult(True, Decimal(0), "meter data copied onto the check card", True)

    def _card_set(self, image, answer) -> InsertResult:
        p, st = image.command.params, self.state
        if p.version < st.param_version:
            return InsertResult(False, Decimal(0), f"parameter version {p.version} is older than the "
                                f"meter's {st.param_version}; not applied", False)
        mark = ServiceMark(st.meter_no, p.version, self.now)
        if p.version == st.param_version:
            if any(m.meter_no == st.meter_no and m.code == p.version for m in image.answers):
                return InsertResult(True, Decimal(0), f"parameter version {p.version} already "
                                    "applied", False)
            answer(mark)  # applied before, but the card does not show it yet
            return InsertResult(True, Decimal(0), f"parameter version {p.version} already applied",
                                True)
        answer(mark)
        st.alarm1, st.alarm2 = str(p.alarm1), str(p.alarm2)
        st.hoarding_limit, st.overdraft_limit = str(p.hoarding_limit), str(p.overdraft_limit)
        st.power_limit_w, st.price, st.param_version = p.power_limit_w, str(p.price), p.version
        self._settle_relay()
        return InsertResult(True, Decimal(0), f"parameter version {p.version} applied", True)

    def _card_clear(self, image, answer) -> InsertResult:
        if image.snapshot is not None:
            return InsertResult(False, Decimal(0), "clear card already used: it holds the data of "
                                f"meter {image.snapshot.returned.meter_no}", False)
        answer(self.snapshot())
        st = self.state
        if st.bound_uid:
            st.retired_uids.append(st.bound_uid)
        st.last_sequence, st.bound_uid = 0, None
        st.remaining = st.cumulative_purchased = st.last_purchase = st.preset_owed = "0.00"
        st.ever_preset = st.suspended = False
        self._settle_relay()
        return InsertResult(True, Decimal(0), "meter cleared; its data before the reset is on the "
                            "card", True)

    def _card_preset(self, image, answer) -> InsertResult:
        st, credit = self.state, image.command.credit
        if st.last_sequence or st.ever_preset or Decimal(st.cumulative_purchased):
            return InsertResult(False, Decimal(0), "preset refused: the meter has already loaded a "
                                "purchase or a preset", False)
        answer(ServiceMark(st.meter_no, 0, self.now))
        st.remaining = str(Decimal(st.remaining) + credit)
        st.preset_owed, st.ever_preset = str(credit), True
        self._settle_relay()
        return InsertResult(True, credit, f"preset credit {credit} loaded; the first purchase repays "
                            "it", True)

    def _card_meter_reading(self, image, answer) -> InsertResult:
        r = self.return_data()
        answer(MeterReading(r.meter_no, r.last_sequence, r.remaining, r.cumulative_purchased,
                            r.cumulative_consumed, r.status, r.tamper_count, r.illegal_card_count,
                            r.written_at))
        return InsertResult(True, Decimal(0), "reading written onto the card", True)

    def _card_management(self, image, answer) -> InsertResult:
        self.state.suspended = image.command.suspend
        self._settle_relay()
        answer(self.snapshot())
        return InsertResult(True, Decimal(0), "supply suspended" if self.state.suspended
                            else "supply resumed", True)

    # -- consumption ---------------------------------------------------------------------------
    def run(self, days: int, daily_kwh: Decimal, profile=None) -> Decimal:
        """Advance ``days`` days consuming ``daily_kwh`` (or ``profile(day)``) while credit lasts.

        A suspended meter consumes nothing; a power limit caps a day at limit x 24 h; an overdraft
        limit lets credit go that far below zero; a priced (money) meter deducts kWh x price."""
        st = self.state
        used_total = Decimal(0)
        for _ in range(days):
            day = self.today + timedelta(days=1)
            if day.month != self.today.month:
                st.history = ["0.00"] + st.history[:HISTORY_MONTHS - 1]
            # the meter registers whole hundredths of a kWh, the resolution of its return data
            want = Decimal(profile(day) if profile else daily_kwh).quantize(KWH_STEP, ROUND_DOWN)
            if st.power_limit_w:
                want = min(want, (Decimal(st.power_limit_w * 24) / 1000).quantize(KWH_STEP,
                                                                                  ROUND_DOWN))
            price = Decimal(st.price)
            available = Decimal(st.remaining) + Decimal(st.overdraft_limit)
            if st.suspended:
                use = cost = Decimal(0)
            elif price > 0:
                use = max(Decimal(0), min(want, (available / price).quantize(KWH_STEP, ROUND_DOWN)))
                cost = min((use * price).quantize(CENT, ROUND_HALF_UP), max(available, Decimal(0)))
            else:
                use = cost = max(Decimal(0), min(want, available))
            st.remaining = str(Decimal(st.remaining) - cost)
            st.cumulative_consumed = str(Decimal(st.cumulative_consumed) + use)
            st.history[0] = str(Decimal(st.history[0]) + use)
            self._settle_relay()
            st.clock = day.isoformat()
            used_total += use
        self.save()
        return used_total
