"""Per-reader-family pseudo-APDUs for SLE4442 memory cards, and status words -> typed errors.

PC/SC has no standard for memory cards, so each reader family speaks its own dialect
(research/cards.md). A dialect only builds APDUs and reads answers; ``reader.py`` moves them.

ACS (ACR38x, ACR39, ACR1281U) has a command for every SLE4442 operation. Omnikey readers use
PC/SC part 3 style READ/UPDATE BINARY and VERIFY; for the operations part 3 does not name we chose
the ISO 7816-4 equivalents (docs/drivers-pcsc.md):

    tries left        VERIFY without data         FF 20 00 00        -> 63Cx, 9000 (verified), 6983
    protection bits   READ BINARY, SFI 1          FF B0 81 00 04     -> 4 bytes
    burn protection   UPDATE BINARY, SFI 1        FF D6 81 addr Lc data (compare, then burn)
    change PSC        CHANGE REFERENCE DATA       FF 24 01 00 03 new
"""

from __future__ import annotations

from dbmis_core.errors import (
    CardError,
    CardLockedError,
    CardWriteProtectedError,
    ConfigError,
    WrongPscError,
)

OK = 0x9000
NOT_PRESENTED = 0x6982   # security status not satisfied
PROTECTED = 0x6985       # conditions of use not satisfied: a byte in the range is burned
BLOCKED = 0x6983         # authentication method blocked
WRONG_P1P2 = 0x6B00
NOT_SUPPORTED = 0x6A81
UNKNOWN_INS = 0x6D00
FAILED = 0x6F00
TRIES = 0x63C0           # low nibble = tries left

MEMORY = 256
PROTECTED_AREA = 32


def tries_to_errcnt(tries: int) -> int:
    """SLE4442 error counter bits for ``tries`` tries left (3 -> 0b111)."""
    return (1 << tries) - 1


def errcnt_to_tries(errcnt: int) -> int:
    return bin(errcnt & 0x07).count("1")


def check_sw(sw: int, doing: str) -> None:
    """Raise the typed error a status word means; ``doing`` names the operation for the message."""
    if sw == OK:
        return
    if sw == NOT_PRESENTED:
        raise CardWriteProtectedError("write refused: the PSC has not been presented")
    if sw == PROTECTED:
        raise CardWriteProtectedError("write refused: a byte in that range is write-protected")
    if sw == BLOCKED:
        raise CardLockedError("the card is locked: its PSC was presented wrongly three times")
    if sw & 0xFFF0 == TRIES:
        left = sw & 0x0F
        if left == 0:
            raise CardLockedError("wrong PSC; the card is now locked")
        raise WrongPscError(f"wrong PSC; {left} tries left", left)
    raise CardError(f"the card refused to {doing} (SW {sw >> 8:02X} {sw & 0xFF:02X})")


class Dialect:
    """APDU builders and answer readers for one reader family."""

    name = ""
    families: tuple[str, ...] = ()  # reader-name substrings for dialect "auto"
    chunk = 128                      # bytes per read or write APDU

    def session_start(self) -> list[bytes]:
        """APDUs to send after every connect."""
        return []

    def read(self, addr: int, length: int) -> bytes:
        raise NotImplementedError

    def write(self, addr: int, data: bytes) -> bytes:
        raise NotImplementedError

    def read_protection(self) -> bytes:
        raise NotImplementedError

    def protect(self, addr: int, data: bytes) -> bytes:
        raise NotImplementedError

    def tries(self) -> bytes:
        raise NotImplementedError

    def parse_tries(self, data: bytes, sw: int) -> int:
        raise NotImplementedError

    def present(self, psc: bytes) -> bytes:
        return bytes([0xFF, 0x20, 0x00, 0x00, 0x03]) + psc

    def parse_present(self, sw: int) -> int:
        raise NotImplementedError

    def change_psc(self, new_psc: bytes) -> bytes:
        raise NotImplementedError


class AcsDialect(Dialect):
    """ACS reference manuals: ACR38x CCID, ACR39, ACR1281U (card type 06 = SLE4432/4442/5542)."""

    name = "acs"
    families = ("ACS", "ACR")

    def session_start(self) -> list[bytes]:
        return [bytes.fromhex("FFA400000106")]

    def read(self, addr, length):
        return bytes([0xFF, 0xB0, 0x00, addr, length])

    def write(self, addr, data):
        return bytes([0xFF, 0xD0, 0x00, addr, len(data)]) + data

    def read_protection(self):
        return bytes.fromhex("FFB2000004")

    def protect(self, addr, data):
        return bytes([0xFF, 0xD1, 0x00, addr, len(data)]) + data

    def tries(self):
        return bytes.fromhex("FFB1000004")

    def parse_tries(self, data, sw):
        check_sw(sw, "report its PSC error counter")
        if len(data) < 1:
            raise CardError("the reader sent no PSC error counter")
        return errcnt_to_tries(data[0])

    def parse_present(self, sw):
        """ACS answers 90 ERRCNT: 07 accepted, 00 locked, anything else a failed try."""
        if sw >> 8 != 0x90:
            check_sw(sw, "check the PSC")
        left = errcnt_to_tries(sw & 0xFF)
        if left == 3:
            return 3
        if left == 0:
            raise CardLockedError("the card is locked: its PSC was presented wrongly three times")
        raise WrongPscError(f"wrong PSC; {left} tries left", left)

    def change_psc(self, new_psc):
        return bytes([0xFF, 0xD2, 0x00, 0x01, 0x03]) + new_psc


class OmnikeyDialect(Dialect):
    """HID Omnikey: PC/SC part 3 READ/UPDATE BINARY and VERIFY, ISO 7816-4 for the rest."""

    name = "omnikey"
    families = ("OMNIKEY", "HID")
    PROTECTION_SFI = 0x81  # P1 bit 8 set: bits 1-5 name a short file; file 1 is protection memory

    def read(self, addr, length):
        return bytes([0xFF, 0xB0, addr >> 8, addr & 0xFF, length])

    def write(self, addr, data):
        return bytes([0xFF, 0xD6, addr >> 8, addr & 0xFF, len(data)]) + data

    def read_protection(self):
        return bytes([0xFF, 0xB0, self.PROTECTION_SFI, 0x00, 0x04])

    def protect(self, addr, data):
        return bytes([0xFF, 0xD6, self.PROTECTION_SFI, addr, len(data)]) + data

    def tries(self):
        return bytes.fromhex("FF200000")

    def parse_tries(self, data, sw):
        if sw & 0xFFF0 == TRIES:
            return sw & 0x0F
        if sw == BLOCKED:
            return 0
        check_sw(sw, "report its PSC tries")
        return 3  # 9000: verified in this session, so the card has reset its counter

    def parse_present(self, sw):
        check_sw(sw, "check the PSC")
        return 3

    def change_psc(self, new_psc):
        return bytes([0xFF, 0x24, 0x01, 0x00, 0x03]) + new_psc


DIALECTS: dict[str, type[Dialect]] = {d.name: d for d in (AcsDialect, OmnikeyDialect)}


def pick(dialect: str, reader_name: str) -> Dialect:
    """The dialect a setting names; ``auto`` chooses by reader name and falls back to ACS."""
    key = (dialect or "acs").lower()
    if key == "auto":
        upper = reader_name.upper()
        key = next((d.name for d in DIALECTS.values() if any(f in upper for f in d.families)), "acs")
    if key not in DIALECTS:
        raise ConfigError(f"unknown PC/SC dialect {dialect!r}; choose auto, {', '.join(DIALECTS)}")
    return DIALECTS[key]()
