"""Byte layout of the reference card (docs/card-format.md has the table).

    0x00-0x07  chip serial (UID), protected at the factory
    0x08-0x1F  header: "DB", version, card type, key version, flags, utility code, meter no (BCD),
               account no (BCD), CRC16; protected (write-once) after personalisation
    0x20-0x4F  vend slot A (48 bytes)    0x50-0x7F  vend slot B (48 bytes)
    0x80-0xDF  return area written by the meter (96 bytes)

A vend slot is payload(28) | MAC(16) | CRC16(2) | pad(2). The MAC is HMAC-SHA256 under the card key
(diversified per meter and per card UID), so a record copied to another card, or meant for another
meter, is rejected; the CRC detects a torn write, and the two slots mean a pull during a write
always leaves the previous record intact. The PSC is diversified the same way.

Service cards keep the header and use the rest differently (docs/decisions/0005-service-cards.md):

    0x20-0x5F  command written by the system: "SC", type, length, issued-at, payload(38), MAC, CRC16
    0x60-0xFF  answer written by meters: one snapshot (check, clear, management cards) or a table of
               independently MACed entries, one per meter (test, set, preset, meter-reading cards)

A batch card (header meter number 000000, any meter of the utility) is keyed by the service key, a
single-meter card by that meter's key; both are diversified per card UID like a user card.
"""

from __future__ import annotations

import binascii
import hmac
import struct
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

from dbmis_core.cards import (
    ANY_METER,
    COMMANDS,
    MARK_TYPES,
    MAX_TEST_USES,
    SINGLE_METER_TYPES,
    SNAPSHOT_TYPES,
    CardConnection,
    CardHeader,
    CardImage,
    CheckCommand,
    ClearCommand,
    EntryState,
    ManagementCommand,
    MeterParameters,
    MeterReading,
    MeterSnapshot,
    PresetCommand,
    ReadingCommand,
    SelfTestCommand,
    ServiceCardImage,
    ServiceMark,
    SetCommand,
    SlotState,
    VendRecord,
)
from dbmis_core.domain import CardType, CreditUnit, MeterReturn
from dbmis_core.errors import (
    BlankCardError,
    CardFormatError,
    ConfigError,
    ValidationError,
    WrongPscError,
)
from dbmis_core.keys import TRANSPORT_PSC, card_key, card_psc
from dbmis_core.money import PRICE_STEP, from_hundredths, to_hundredths

UID_AT, UID_LEN = 0x00, 8
HDR_AT, HDR_LEN = 0x08, 24
SLOTS = (("A", 0x20), ("B", 0x50))
SLOT_LEN = 48
RET_AT = 0x80
FORMAT_VERSION = 1
MAC_LEN = 16

_HDR = struct.Struct(">2sBBBBH6s6s")       # 20 bytes, then CRC16 and 2 pad bytes
_VEND = struct.Struct(">IBI6s6sIB2x")     # 28 bytes
_RET = struct.Struct(">2s6sIiQQBBBHB36sI")  # 78 bytes
RET_LEN = _RET.size + MAC_LEN + 2

CMD_AT, CMD_LEN = 0x20, 64
ANS_AT, ANS_LEN = 0x60, 160
ENTRY_MAC_LEN = 8
_CMD = struct.Struct(">2sBBI38s")            # 46 bytes, then MAC and CRC16
_PARAMS = struct.Struct(">IIIIIIH")          # 26 bytes
_SNAP_TAIL = struct.Struct(">iBH")           # preset owed, flags, test uses
SNAP_BODY = 2 + _RET.size + _PARAMS.size + _SNAP_TAIL.size
SNAP_LEN = SNAP_BODY + MAC_LEN + 2
_MARK = struct.Struct(">6sHI")               # 12 bytes + 8-byte MAC = 20
_READING = struct.Struct(">6sIi5s5sBBBIx")   # 32 bytes + 8-byte MAC = 40
MARK_LEN, READING_LEN = _MARK.size + ENTRY_MAC_LEN, _READING.size + ENTRY_MAC_LEN
ROUTE_LEN = 32
_SUSPENDED = 0x01


def crc16(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def bcd(number: str) -> bytes:
    """12-digit field, right-aligned, padded with 0xF nibbles (keeps leading zeros)."""
    if not number.isdigit() or len(number) > 12:
        raise CardFormatError(f"{number!r} does not fit a 12-digit BCD field")
    return bytes.fromhex(number.rjust(12, "f"))


def unbcd(raw: bytes) -> str:
    digits = raw.hex().lstrip("f")
    if not digits or not digits.isdigit():
        raise CardFormatError("malformed BCD number on the card")
    return digits


def _mac(key: bytes, label: bytes, payload: bytes) -> bytes:
    return hmac.digest(key, label + payload, "sha256")[:MAC_LEN]  # one-shot: OpenSSL, no object


def _ts(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def pack_header(h: CardHeader) -> bytes:
    body = _HDR.pack(b"DB", FORMAT_VERSION, int(h.card_type), h.key_version, 0, h.utility_code,
                     bcd(h.meter_no), bcd(h.account_no))
    return body + struct.pack(">H", crc16(body)) + b"\x00\x00"


@lru_cache(maxsize=1024)  # pure; a sale decodes the same bytes up to three times
def unpack_header(raw: bytes) -> CardHeader:
    if raw == b"\xff" * HDR_LEN:
        raise BlankCardError("the card is blank (not yet issued)")
    body, crc = raw[:20], struct.unpack(">H", raw[20:22])[0]
    if crc16(body) != crc:
        raise CardFormatError("card header is damaged (CRC mismatch)")
    magic, ver, ctype, keyver, _flags, util, meter, acct = _HDR.unpack(body)
    if magic != b"DB":
        raise CardFormatError("not a DBMIS card (unknown header)")
    if ver != FORMAT_VERSION:
        raise CardFormatError(f"card format version {ver} is not supported")
    try:
        card_type = CardType(ctype)
    except ValueError:
        raise CardFormatError(f"unknown card type code {ctype}") from None
    return CardHeader(card_type, util, unbcd(meter), unbcd(acct), keyver)


def pack_vend(rec: VendRecord, key: bytes, card_type: CardType = CardType.USER) -> bytes:
    payload = _VEND.pack(rec.sequence, int(rec.unit), to_hundredths(rec.credit), bcd(rec.meter_no),
                         bcd(rec.account_no), int(rec.issued_at.timestamp()), int(card_type))
    body = payload + _mac(key, b"vend", payload)
    return body + struct.pack(">H", crc16(body)) + b"\x00\x00"


@lru_cache(maxsize=1024)  # pure; a sale decodes the same bytes up to three times
def unpack_vend(raw: bytes, key: bytes) -> tuple[VendRecord | None, str | None]:
    """Decode one slot; returns (record, None) or (None, why it is unusable)."""
    if raw == b"\xff" * SLOT_LEN:
        return None, "empty"
    body, crc = raw[:44], struct.unpack(">H", raw[44:46])[0]
    if crc16(body) != crc:
        return None, "torn or damaged (CRC mismatch)"
    payload, mac = body[:28], body[28:44]
    if not hmac.compare_digest(_mac(key, b"vend", payload), mac):
        return None, "forged or moved (MAC mismatch)"
    seq, unit, credit, meter, acct, ts, _ct = _VEND.unpack(payload)
    try:
        return VendRecord(seq, from_hundredths(credit), CreditUnit(unit), unbcd(meter), unbcd(acct),
                          _ts(ts)), None
    except (ValueError, CardFormatError) as exc:
        return None, f"malformed ({exc})"


def _hist_pack(values: tuple[Decimal, ...]) -> bytes:
    vals = list(values[:12]) + [Decimal(0)] * (12 - len(values[:12]))
    out = b""
    for v in vals:
        n = min(to_hundredths(v), 0xFFFFFF)
        out += n.to_bytes(3, "big")
    return out


def _return_payload(ret: MeterReturn) -> bytes:
    return _RET.pack(b"RT", bcd(ret.meter_no), ret.last_sequence, to_hundredths(ret.remaining),
                     to_hundredths(ret.cumulative_purchased), to_hundredths(ret.cumulative_consumed),
                     ret.status & 0xFF, min(ret.tamper_count, 255), min(ret.illegal_card_count, 255),
                     ret.history_month[0], ret.history_month[1], _hist_pack(ret.history),
                     int(ret.written_at.timestamp()))


def _return_from_payload(payload: bytes) -> MeterReturn:
    """Decode a MAC-checked return payload; raises CardFormatError if its fields make no sense."""
    (magic, meter, seq, remaining, purchased, consumed, status, tamper, illegal, hy, hm, hist,
     ts) = _RET.unpack(payload)
    if magic != b"RT":
        raise CardFormatError("malformed return area")
    try:
        history = tuple(from_hundredths(int.from_bytes(hist[i:i + 3], "big")) for i in range(0, 36, 3))
        return MeterReturn(unbcd(meter), seq, from_hundredths(remaining), from_hundredths(purchased),
                           from_hundredths(consumed), status, tamper, illegal, (hy, hm), history,
                           _ts(ts))
    except (ValueError, OverflowError, CardFormatError) as exc:
        raise CardFormatError(f"malformed return area ({exc})") from None


def pack_return(ret: MeterReturn, key: bytes) -> bytes:
    payload = _return_payload(ret)
    body = payload + _mac(key, b"return", payload)
    return body + struct.pack(">H", crc16(body))


@lru_cache(maxsize=1024)  # pure; a sale decodes the same bytes up to three times
def unpack_return(raw: bytes, key: bytes) -> tuple[MeterReturn | None, str | None]:
    if raw == b"\xff" * RET_LEN:
        return None, "empty (the card has not been in the meter)"
    n = _RET.size
    body, crc = raw[:n + MAC_LEN], struct.unpack(">H", raw[n + MAC_LEN:n + MAC_LEN + 2])[0]
    if crc16(body) != crc:
        return None, "torn or damaged (CRC mismatch)"
    payload, mac = body[:n], body[n:]
    if not hmac.compare_digest(_mac(key, b"return", payload), mac):
        return None, "forged (MAC mismatch)"
    try:
        return _return_from_payload(payload), None
    except CardFormatError as exc:
        return None, str(exc)


# -- service cards ---------------------------------------------------------------------------------
def _fits(fmt: struct.Struct, *values) -> bytes:
    try:
        return fmt.pack(*values)
    except struct.error as exc:
        raise CardFormatError(f"a value does not fit its field on the card ({exc})") from None


def _u40(value: Decimal, what: str) -> bytes:
    n = to_hundredths(value)
    if not 0 <= n < 1 << 40:
        raise CardFormatError(f"{what} {value} does not fit its field on the card")
    return n.to_bytes(5, "big")


def _pack_params(p: MeterParameters) -> bytes:
    price = p.price.quantize(PRICE_STEP)
    if price != p.price:
        raise ValidationError(f"price {p.price} has more than four decimals")
    return _fits(_PARAMS, to_hundredths(p.alarm1), to_hundredths(p.alarm2),
                 to_hundredths(p.hoarding_limit), to_hundredths(p.overdraft_limit), p.power_limit_w,
                 int(price / PRICE_STEP), p.version)


def _unpack_params(raw: bytes) -> MeterParameters:
    a1, a2, hoard, over, watts, price, version = _PARAMS.unpack(raw)
    return MeterParameters(from_hundredths(a1), from_hundredths(a2), from_hundredths(hoard),
                           from_hundredths(over), watts, (price * PRICE_STEP).quantize(PRICE_STEP),
                           version)


def _command_payload(cmd) -> bytes:
    if isinstance(cmd, SelfTestCommand):
        if not 1 <= cmd.max_uses <= MAX_TEST_USES:
            raise CardFormatError(f"a test card allows 1 to {MAX_TEST_USES} uses, not {cmd.max_uses}")
        return _fits(struct.Struct(">IB"), to_hundredths(cmd.credit), cmd.max_uses)
    if isinstance(cmd, SetCommand):
        return _pack_params(cmd.params)
    if isinstance(cmd, PresetCommand):
        return _fits(struct.Struct(">I"), to_hundredths(cmd.credit))
    if isinstance(cmd, ReadingCommand):
        route = cmd.route.encode("ascii", "replace")
        if len(route) > ROUTE_LEN or not cmd.route.isascii() or not cmd.route.isprintable():
            raise CardFormatError(f"route code {cmd.route!r} must be up to {ROUTE_LEN} printable "
                                  "ASCII characters")
        return route
    if isinstance(cmd, ManagementCommand):
        return bytes([1 if cmd.suspend else 0])
    if isinstance(cmd, (CheckCommand, ClearCommand)):
        return b""
    raise CardFormatError(f"unknown service command {cmd!r}")


def _command_from(card_type: CardType, p: bytes):
    """Decode a MAC-checked command payload; CardFormatError if it does not fit its card type."""
    def need(n: int) -> None:
        if len(p) != n:
            raise CardFormatError(f"a {card_type.name.lower()} command has {n} bytes, not {len(p)}")

    if card_type == CardType.TEST:
        need(5)
        credit, uses = struct.unpack(">IB", p)
        if not 1 <= uses <= MAX_TEST_USES:
            raise CardFormatError(f"test card allows {uses} uses")
        return SelfTestCommand(from_hundredths(credit), uses)
    if card_type == CardType.SET:
        need(_PARAMS.size)
        return SetCommand(_unpack_params(p))
    if card_type == CardType.PRESET:
        need(4)
        return PresetCommand(from_hundredths(struct.unpack(">I", p)[0]))
    if card_type == CardType.METER_READING:
        route = p.decode("ascii", "replace")
        if len(p) > ROUTE_LEN or not route.isascii() or not route.isprintable():
            raise CardFormatError("route code is not printable ASCII")
        return ReadingCommand(route)
    if card_type == CardType.MANAGEMENT:
        need(1)
        if p[0] not in (0, 1):
            raise CardFormatError(f"unknown management action {p[0]}")
        return ManagementCommand(bool(p[0]))
    need(0)
    return COMMANDS[card_type]()


def _framed(body: bytes, key: bytes, label: bytes, header_raw: bytes) -> bytes:
    """body | MAC over header and body | CRC16 over both."""
    framed = body + _mac(key, label, header_raw + body)
    return framed + struct.pack(">H", crc16(framed))


def _unframe(raw: bytes, n: int, key: bytes, label: bytes, header_raw: bytes) -> tuple[bytes | None, str | None]:
    """The MAC-checked body of a framed area of body length ``n``, or (None, why not)."""
    area = raw[:n + MAC_LEN + 2]
    if area == b"\xff" * len(area):
        return None, "empty"
    framed, crc = area[:n + MAC_LEN], struct.unpack(">H", area[n + MAC_LEN:])[0]
    if crc16(framed) != crc:
        return None, "torn or damaged (CRC mismatch)"
    if not hmac.compare_digest(_mac(key, label, header_raw + framed[:n]), framed[n:]):
        return None, "forged or moved (MAC mismatch)"
    return framed[:n], None


def pack_command(header: CardHeader, cmd, issued_at: datetime, key: bytes) -> bytes:
    payload = _command_payload(cmd)
    body = _fits(_CMD, b"SC", int(cmd.card_type), len(payload), int(issued_at.timestamp()), payload)
    return _framed(body, key, b"command", pack_header(header))


def unpack_command(raw: bytes, header_raw: bytes, card_type: CardType, key: bytes):
    """(command, issued_at, None) or (None, None, why the command is unusable)."""
    body, problem = _unframe(raw, _CMD.size, key, b"command", header_raw)
    if body is None:
        return None, None, problem
    magic, ctype, n, ts, payload = _CMD.unpack(body)
    if magic != b"SC" or ctype != card_type or n > len(payload):
        return None, None, "malformed command"
    try:
        return _command_from(card_type, payload[:n]), _ts(ts), None
    except (CardFormatError, ValueError) as exc:
        return None, None, f"malformed command ({exc})"


def pack_snapshot(snap: MeterSnapshot, header_raw: bytes, key: bytes) -> bytes:
    tail = _fits(_SNAP_TAIL, to_hundredths(snap.preset_owed), _SUSPENDED if snap.suspended else 0,
                 min(snap.test_uses, 0xFFFF))
    body = b"AN" + _return_payload(snap.returned) + _pack_params(snap.params) + tail
    return _framed(body, key, b"snapshot", header_raw)


def unpack_snapshot(raw: bytes, header_raw: bytes, key: bytes):
    body, problem = _unframe(raw, SNAP_BODY, key, b"snapshot", header_raw)
    if body is None:
        return None, problem if problem != "empty" else "empty (the card has not been in the meter)"
    ret_end = 2 + _RET.size
    params_end = ret_end + _PARAMS.size
    if body[:2] != b"AN":
        return None, "malformed answer area"
    try:
        returned = _return_from_payload(body[2:ret_end])
        owed, flags, uses = _SNAP_TAIL.unpack(body[params_end:])
        return MeterSnapshot(returned, _unpack_params(body[ret_end:params_end]),
                             from_hundredths(owed), bool(flags & _SUSPENDED), uses), None
    except (CardFormatError, ValueError) as exc:
        return None, f"malformed answer area ({exc})"


def _entry_mac(key: bytes, label: bytes, header_raw: bytes, payload: bytes) -> bytes:
    return _mac(key, label, header_raw + payload)[:ENTRY_MAC_LEN]


def pack_entry(entry: ServiceMark | MeterReading, header_raw: bytes, key: bytes) -> bytes:
    ts = int(entry.written_at.timestamp())
    if isinstance(entry, ServiceMark):
        payload, label = _fits(_MARK, bcd(entry.meter_no), entry.code, ts), b"mark"
    else:
        payload, label = _fits(
            _READING, bcd(entry.meter_no), entry.last_sequence, to_hundredths(entry.remaining),
            _u40(entry.cumulative_purchased, "cumulative purchased"),
            _u40(entry.cumulative_consumed, "cumulative consumed"), entry.status & 0xFF,
            min(entry.tamper_count, 255), min(entry.illegal_card_count, 255), ts), b"reading"
    return payload + _entry_mac(key, label, header_raw, payload)


def unpack_entry(raw: bytes, reading: bool, header_raw: bytes, key: bytes):
    """(entry, None) or (None, why the slot holds no entry)."""
    fmt, label = (_READING, b"reading") if reading else (_MARK, b"mark")
    if raw == b"\xff" * len(raw):
        return None, "empty"
    payload, mac = raw[:fmt.size], raw[fmt.size:]
    if not hmac.compare_digest(_entry_mac(key, label, header_raw, payload), mac):
        return None, "torn, forged or moved (MAC mismatch)"
    try:
        if not reading:
            meter, code, ts = _MARK.unpack(payload)
            return ServiceMark(unbcd(meter), code, _ts(ts)), None
        meter, seq, rem, bought, used, status, tamper, illegal, ts = _READING.unpack(payload)
        return MeterReading(unbcd(meter), seq, from_hundredths(rem),
                            from_hundredths(int.from_bytes(bought, "big")),
                            from_hundredths(int.from_bytes(used, "big")), status, tamper, illegal,
                            _ts(ts)), None
    except (CardFormatError, ValueError) as exc:
        return None, f"malformed entry ({exc})"


def entry_slots(card_type: CardType) -> tuple[int, bool]:
    """(slot size, holds readings) of the answer table of a test, set, preset or reading card."""
    reading = card_type not in MARK_TYPES
    return (READING_LEN if reading else MARK_LEN), reading


class RefCardFormat:
    name = "dbmis-ref"

    def __init__(self, keys) -> None:
        self.keys = keys

    # -- shared ------------------------------------------------------------------------------
    @staticmethod
    def read_uid(conn: CardConnection) -> str:
        return conn.read(UID_AT, UID_LEN).hex().upper()

    @staticmethod
    def _read_all(conn: CardConnection) -> bytes:
        return conn.read(0, 256)

    @staticmethod
    def _slots(mem: bytes, key: bytes) -> tuple[tuple[SlotState, ...], VendRecord | None, int | None]:
        states, newest, newest_at = [], None, None
        for name, at in SLOTS:
            rec, problem = unpack_vend(mem[at:at + SLOT_LEN], key)
            states.append(SlotState(name, rec, problem))
            if rec and (newest is None or rec.sequence > newest.sequence):
                newest, newest_at = rec, at
        return tuple(states), newest, newest_at

    def _meter_key(self, header: CardHeader) -> bytes:
        try:
            return self.keys.meter_key(header.meter_no, header.key_version)
        except ConfigError:  # the header came off a card: a foreign card, not a broken key file
            raise CardFormatError(f"card was issued under card key version {header.key_version}, "
                                  "which this system's key file does not hold") from None

    def _root_key(self, header: CardHeader) -> bytes:
        """The key a card's PSC and MACs derive from: the service key for batch service cards."""
        if not (header.card_type.is_service and header.meter_no == ANY_METER):
            return self._meter_key(header)
        try:
            return self.keys.service_key(header.key_version)
        except ConfigError:
            raise CardFormatError(f"card was issued under card key version {header.key_version}, "
                                  "which this system's key file does not hold") from None

    # -- system side -------------------------------------------------------------------------
    def personalise(self, conn: CardConnection, header: CardHeader) -> str:
        """Turn a blank card into a DBMIS card of ``header``; returns the card UID."""
        return self._issue(conn, header, lambda uid_raw: [(RET_AT, b"\xff" * RET_LEN)])

    def _issue(self, conn: CardConnection, header: CardHeader, areas) -> str:
        """Write header and ``areas(uid)`` [(address, bytes)], set the PSC, burn the header.

        A card pulled half-way can be issued again with the same header (its PSC may be changed)."""
        uid_raw = conn.read(UID_AT, UID_LEN)
        psc = card_psc(self._root_key(header), uid_raw)
        extra = areas(uid_raw)  # built before anything is written: a bad value changes nothing
        current = conn.read(HDR_AT, HDR_LEN)
        wanted = pack_header(header)
        if any(c not in (0xFF, w) for c, w in zip(current, wanted)):  # blank, torn issue or done
            raise CardFormatError("the card is already issued; use a blank card")
        if current == wanted:  # resuming an interrupted issue: the PSC may already be changed
            try:
                conn.present_psc(TRANSPORT_PSC)
            except WrongPscError:
                conn.present_psc(psc)
        else:
            conn.present_psc(TRANSPORT_PSC)
        conn.write(HDR_AT, wanted)
        for at, data in extra:
            conn.write(at, data)
        conn.change_psc(psc)
        conn.protect(HDR_AT, wanted)
        return uid_raw.hex().upper()

    def read(self, conn: CardConnection) -> CardImage:
        mem = self._read_all(conn)
        header = unpack_header(mem[HDR_AT:HDR_AT + HDR_LEN])
        uid_raw = mem[UID_AT:UID_LEN]
        key = card_key(self._meter_key(header), uid_raw)
        slots, newest, _ = self._slots(mem, key)
        if newest and (newest.meter_no != header.meter_no or newest.account_no != header.account_no):
            raise CardFormatError("vend record does not belong to this card's meter or account")
        returned, problem = unpack_return(mem[RET_AT:RET_AT + RET_LEN], key)
        if returned and returned.meter_no != header.meter_no:
            returned, problem = None, "written by another meter"
        return CardImage(uid_raw.hex().upper(), header, slots, newest, returned, problem,
                         conn.tries_left())

    def write_vend(self, conn: CardConnection, record: VendRecord) -> None:
        """Write ``record`` into the slot that does not hold the newest valid record."""
        mem = self._read_all(conn)
        header = unpack_header(mem[HDR_AT:HDR_AT + HDR_LEN])
        if header.card_type.is_service:
            raise CardFormatError(f"a {header.card_type.name.lower()} card holds no vend records")
        if (record.meter_no, record.account_no) != (header.meter_no, header.account_no):
            raise CardFormatError("this card belongs to another meter or account")
        uid_raw = mem[UID_AT:UID_LEN]
        meter_key = self._meter_key(header)
        key = card_key(meter_key, uid_raw)
        _, newest, newest_at = self._slots(mem, key)
        target = SLOTS[1][1] if newest_at == SLOTS[0][1] else SLOTS[0][1]
        conn.present_psc(card_psc(meter_key, uid_raw))
        conn.write(target, pack_vend(record, key, header.card_type))

    def revoke_vend(self, conn: CardConnection, sequence: int) -> None:
        """Blank the slot holding the newest record, which must carry ``sequence`` (a reversed sale).

        One write of 0xFF bytes over one slot: a pull half-way leaves a slot whose CRC fails, so the
        card then holds the other slot's record (the previous sale's, or none), exactly as after a
        complete revoke; a pull before the first byte leaves the record untouched."""
        mem = self._read_all(conn)
        header = unpack_header(mem[HDR_AT:HDR_AT + HDR_LEN])
        if header.card_type.is_service:
            raise CardFormatError(f"a {header.card_type.name.lower()} card holds no vend records")
        uid_raw = mem[UID_AT:UID_LEN]
        meter_key = self._meter_key(header)
        _, newest, newest_at = self._slots(mem, card_key(meter_key, uid_raw))
        if newest is None or newest.sequence != sequence:
            held = newest.sequence if newest else "none"
            raise CardFormatError(f"the card's newest vend record is sequence {held}, not {sequence}")
        conn.present_psc(card_psc(meter_key, uid_raw))
        conn.write(newest_at, b"\xff" * SLOT_LEN)

    # -- service cards -----------------------------------------------------------------------
    def write_service(self, conn: CardConnection, header: CardHeader, command,
                      issued_at: datetime) -> str:
        """Issue the blank card in the reader as a service card carrying ``command``."""
        if COMMANDS.get(header.card_type) is not type(command):
            raise CardFormatError(f"a {header.card_type.name.lower()} card cannot carry {command!r}")
        if header.card_type in SINGLE_METER_TYPES and header.meter_no == ANY_METER:
            raise CardFormatError(f"a {header.card_type.name.lower()} card must name one meter")
        root = self._root_key(header)

        def areas(uid_raw: bytes):
            return [(CMD_AT, pack_command(header, command, issued_at, card_key(root, uid_raw))),
                    (ANS_AT, b"\xff" * ANS_LEN)]

        return self._issue(conn, header, areas)

    def read_header(self, conn: CardConnection) -> CardHeader:
        return unpack_header(conn.read(HDR_AT, HDR_LEN))

    def read_any(self, conn: CardConnection) -> CardImage | ServiceCardImage:
        """A user card as ``read`` gives it, or a service card with its command and answers."""
        mem = self._read_all(conn)
        header = unpack_header(mem[HDR_AT:HDR_AT + HDR_LEN])
        if not header.card_type.is_service:
            return self.read(conn)
        return self._service_image(mem, header, self._root_key(header), conn.tries_left())

    @staticmethod
    def _service_image(mem: bytes, header: CardHeader, root: bytes, tries: int) -> ServiceCardImage:
        uid_raw, header_raw = mem[UID_AT:UID_LEN], mem[HDR_AT:HDR_AT + HDR_LEN]
        key = card_key(root, uid_raw)
        command, issued, problem = unpack_command(mem[CMD_AT:CMD_AT + CMD_LEN], header_raw,
                                                  header.card_type, key)
        snapshot, answer_problem, entries = None, None, ()
        answer = mem[ANS_AT:ANS_AT + ANS_LEN]
        if header.card_type in SNAPSHOT_TYPES:
            snapshot, answer_problem = unpack_snapshot(answer, header_raw, key)
            if snapshot and snapshot.returned.meter_no != header.meter_no:
                snapshot, answer_problem = None, "written by another meter"
        else:
            size, reading = entry_slots(header.card_type)
            states = []
            for i in range(ANS_LEN // size):
                entry, why = unpack_entry(answer[i * size:(i + 1) * size], reading, header_raw, key)
                if entry and header.meter_no not in (ANY_METER, entry.meter_no):
                    entry, why = None, "written by another meter"
                states.append(EntryState(i, entry, why))
            entries = tuple(states)
        return ServiceCardImage(uid_raw.hex().upper(), header, command, issued, problem, snapshot,
                                answer_problem, entries, tries)

    @staticmethod
    def _meter_root(header: CardHeader, meter_key: bytes, service_key: bytes | None,
                    meter_no: str) -> bytes:
        """The key the meter checks and answers a service card with; refuses cards not for it."""
        kind = header.card_type.name.lower()
        if not header.card_type.is_service:
            raise CardFormatError(f"a {kind} card is not a service card")
        if header.meter_no == ANY_METER:
            if header.card_type in SINGLE_METER_TYPES:
                raise CardFormatError(f"a {kind} card must name its meter")
            if service_key is None:
                raise CardFormatError("this meter holds no service key")
            return service_key
        if header.meter_no != meter_no:
            raise CardFormatError(f"card is for meter {header.meter_no}, not {meter_no}")
        return meter_key

    def meter_read_service(self, conn: CardConnection, meter_key: bytes, service_key: bytes | None,
                           meter_no: str) -> ServiceCardImage:
        mem = self._read_all(conn)
        header = unpack_header(mem[HDR_AT:HDR_AT + HDR_LEN])
        root = self._meter_root(header, meter_key, service_key, meter_no)
        return self._service_image(mem, header, root, conn.tries_left())

    def _meter_answer_key(self, conn, meter_key, service_key, meter_no):
        mem = self._read_all(conn)
        header = unpack_header(mem[HDR_AT:HDR_AT + HDR_LEN])
        root = self._meter_root(header, meter_key, service_key, meter_no)
        return mem, header, root

    def meter_write_snapshot(self, conn: CardConnection, meter_key: bytes, service_key: bytes | None,
                             meter_no: str, snapshot: MeterSnapshot) -> None:
        mem, header, root = self._meter_answer_key(conn, meter_key, service_key, meter_no)
        if header.card_type not in SNAPSHOT_TYPES:
            raise CardFormatError(f"a {header.card_type.name.lower()} card takes no snapshot")
        uid_raw = mem[UID_AT:UID_LEN]
        data = pack_snapshot(snapshot, mem[HDR_AT:HDR_AT + HDR_LEN], card_key(root, uid_raw))
        conn.present_psc(card_psc(root, uid_raw))
        conn.write(ANS_AT, data)

    def meter_write_entry(self, conn: CardConnection, meter_key: bytes, service_key: bytes | None,
                          meter_no: str, entry: ServiceMark | MeterReading) -> None:
        """Write the meter's entry: over its own earlier one (same meter, same code), else into
        the first slot holding no valid entry; a full card is a CardFormatError."""
        mem, header, root = self._meter_answer_key(conn, meter_key, service_key, meter_no)
        if header.card_type in SNAPSHOT_TYPES:
            raise CardFormatError(f"a {header.card_type.name.lower()} card takes no entries")
        size, reading = entry_slots(header.card_type)
        if reading != isinstance(entry, MeterReading):
            raise CardFormatError(f"a {header.card_type.name.lower()} card takes no {entry!r}")
        image = self._service_image(mem, header, root, 0)

        def same(e) -> bool:
            return e.meter_no == entry.meter_no and (reading or e.code == entry.code)

        slots = [s.index for s in image.entries if s.entry is not None and same(s.entry)]
        slots += [s.index for s in image.entries if s.entry is None]
        if not slots:
            raise CardFormatError("the card's answer area is full")
        uid_raw = mem[UID_AT:UID_LEN]
        data = pack_entry(entry, mem[HDR_AT:HDR_AT + HDR_LEN], card_key(root, uid_raw))
        conn.present_psc(card_psc(root, uid_raw))
        conn.write(ANS_AT + slots[0] * size, data)

    # -- meter side --------------------------------------------------------------------------
    def meter_read(self, conn: CardConnection, meter_key: bytes, meter_no: str):
        """What a meter sees: (uid, header, newest valid vend or None, slot states)."""
        mem = self._read_all(conn)
        header = unpack_header(mem[HDR_AT:HDR_AT + HDR_LEN])
        if header.meter_no != meter_no:
            raise CardFormatError(f"card is for meter {header.meter_no}, not {meter_no}")
        uid_raw = mem[UID_AT:UID_LEN]
        slots, newest, _ = self._slots(mem, card_key(meter_key, uid_raw))
        if newest and newest.meter_no != meter_no:
            raise CardFormatError("vend record is for another meter")
        return uid_raw.hex().upper(), header, newest, slots

    def meter_write_return(self, conn: CardConnection, meter_key: bytes, ret: MeterReturn) -> None:
        uid_raw = conn.read(UID_AT, UID_LEN)
        conn.present_psc(card_psc(meter_key, uid_raw))
        conn.write(RET_AT, pack_return(ret, card_key(meter_key, uid_raw)))
