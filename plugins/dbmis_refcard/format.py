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
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import struct
from datetime import UTC, datetime
from decimal import Decimal

from dbmis_core.cards import CardConnection, CardHeader, CardImage, SlotState, VendRecord
from dbmis_core.domain import CardType, CreditUnit, MeterReturn
from dbmis_core.errors import BlankCardError, CardFormatError, ConfigError, WrongPscError
from dbmis_core.keys import TRANSPORT_PSC, card_key, card_psc
from dbmis_core.money import from_hundredths, to_hundredths

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
    return hmac.new(key, label + payload, hashlib.sha256).digest()[:MAC_LEN]


def _ts(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def pack_header(h: CardHeader) -> bytes:
    body = _HDR.pack(b"DB", FORMAT_VERSION, int(h.card_type), h.key_version, 0, h.utility_code,
                     bcd(h.meter_no), bcd(h.account_no))
    return body + struct.pack(">H", crc16(body)) + b"\x00\x00"


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


def pack_return(ret: MeterReturn, key: bytes) -> bytes:
    payload = _RET.pack(b"RT", bcd(ret.meter_no), ret.last_sequence, to_hundredths(ret.remaining),
                        to_hundredths(ret.cumulative_purchased), to_hundredths(ret.cumulative_consumed),
                        ret.status & 0xFF, min(ret.tamper_count, 255), min(ret.illegal_card_count, 255),
                        ret.history_month[0], ret.history_month[1], _hist_pack(ret.history),
                        int(ret.written_at.timestamp()))
    body = payload + _mac(key, b"return", payload)
    return body + struct.pack(">H", crc16(body))


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
    (magic, meter, seq, remaining, purchased, consumed, status, tamper, illegal, hy, hm, hist,
     ts) = _RET.unpack(payload)
    if magic != b"RT":
        return None, "malformed return area"
    try:
        history = tuple(from_hundredths(int.from_bytes(hist[i:i + 3], "big")) for i in range(0, 36, 3))
        return MeterReturn(unbcd(meter), seq, from_hundredths(remaining), from_hundredths(purchased),
                           from_hundredths(consumed), status, tamper, illegal, (hy, hm), history,
                           _ts(ts)), None
    except (ValueError, CardFormatError) as exc:
        return None, f"malformed return area ({exc})"


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

    # -- system side -------------------------------------------------------------------------
    def personalise(self, conn: CardConnection, header: CardHeader) -> str:
        """Turn a blank card into a DBMIS card of ``header``; returns the card UID."""
        uid_raw = conn.read(UID_AT, UID_LEN)
        meter_key = self._meter_key(header)
        psc = card_psc(meter_key, uid_raw)
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
        conn.write(RET_AT, b"\xff" * RET_LEN)
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
        if (record.meter_no, record.account_no) != (header.meter_no, header.account_no):
            raise CardFormatError("this card belongs to another meter or account")
        uid_raw = mem[UID_AT:UID_LEN]
        meter_key = self._meter_key(header)
        key = card_key(meter_key, uid_raw)
        _, newest, newest_at = self._slots(mem, key)
        target = SLOTS[1][1] if newest_at == SLOTS[0][1] else SLOTS[0][1]
        conn.present_psc(card_psc(meter_key, uid_raw))
        conn.write(target, pack_vend(record, key, header.card_type))

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
