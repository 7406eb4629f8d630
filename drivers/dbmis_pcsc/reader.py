"""PC/SC reader and card connection over pyscard's ``smartcard.scard`` layer.

The low-level layer hands back PC/SC result codes instead of raising, so every failure becomes one
typed DBMIS error in one place (``error_for``); the high-level classes would also leave half-built
connections whose destructors print tracebacks when pcscd is down. Insert/remove events use pyscard's
CardMonitor. A reader and its connections belong to one thread (the device manager's I/O worker).
"""

from __future__ import annotations

import logging
import time

from smartcard import scard

from dbmis_core.errors import (
    CardError,
    CardRemovedError,
    CardTimeoutError,
    NoCardError,
    ReaderError,
)

from .dialects import MEMORY, PROTECTED_AREA, Dialect, check_sw, pick

SERVICE_DOWN = "card reader service is not running"
DEFAULT_TIMEOUT = 5.0
log = logging.getLogger(__name__)
REMOVAL_SETTLE = 1.5  # pcscd polls a reader every 0.4 s; a lost card shows as removed within that


def error_for(hresult: int, doing: str) -> CardError:
    """The DBMIS error for a PC/SC result code."""
    hresult &= 0xFFFFFFFF
    if hresult in (scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED):
        return ReaderError(SERVICE_DOWN)
    if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
        return ReaderError("no card reader is connected")
    if hresult in (scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE):
        return ReaderError("the card reader is not available (unplugged?)")
    if hresult == scard.SCARD_E_NO_SMARTCARD:
        return NoCardError("no card in the reader; insert a card")
    if hresult == scard.SCARD_W_REMOVED_CARD:
        return CardRemovedError(f"the card was removed during the {doing}")
    if hresult == scard.SCARD_E_TIMEOUT:
        return CardTimeoutError("the card did not answer in time")
    if hresult == scard.SCARD_W_UNRESPONSIVE_CARD:
        return CardError("the card does not answer; is it inserted the right way round?")
    if hresult == scard.SCARD_E_SHARING_VIOLATION:
        return CardTimeoutError("another program is using the card reader")
    return CardError(f"card {doing} failed: {scard.SCardGetErrorMessage(hresult).strip()} "
                     f"(0x{hresult:08X})")


def translate(exc: Exception, doing: str) -> CardError:
    """The DBMIS error for an exception from pyscard's high-level classes (they carry .hresult).

    EstablishContextException does not derive from SmartcardException, so callers catch both."""
    from smartcard.Exceptions import NoCardException, NoReadersException

    if isinstance(exc, NoCardException):
        return NoCardError("no card in the reader; insert a card")
    if isinstance(exc, NoReadersException):
        return ReaderError("no card reader is connected")
    hresult = getattr(exc, "hresult", -1)
    return error_for(scard.SCARD_F_UNKNOWN_ERROR if hresult in (None, -1, 0) else hresult, doing)


def _context() -> int:
    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise error_for(hresult, "start")
    return ctx


def list_readers(settings: dict | None = None) -> list[str]:
    """Names of the readers pcscd sees; ReaderError when pcscd is not running."""
    ctx = _context()
    try:
        hresult, names = scard.SCardListReaders(ctx, [])
    finally:
        scard.SCardReleaseContext(ctx)
    if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
        return []
    if hresult != scard.SCARD_S_SUCCESS:
        raise error_for(hresult, "reader listing")
    return list(names)


def _card_state(ctx: int, name: str) -> int:
    hresult, states = scard.SCardGetStatusChange(ctx, 0, [(name, scard.SCARD_STATE_UNAWARE)])
    if hresult != scard.SCARD_S_SUCCESS:
        raise error_for(hresult, "status check")
    return states[0][1]


class PcscConnection:
    """An exclusive session with the card; PSC verification ends when the session does."""

    def __init__(self, ctx: int, hcard: int, protocol: int, dialect: Dialect) -> None:
        self._ctx, self._hcard = ctx, hcard
        self._pci = scard.SCARD_PCI_T1 if protocol == scard.SCARD_PROTOCOL_T1 else scard.SCARD_PCI_T0
        self.dialect = dialect
        self._removed = False

    # -- transport -------------------------------------------------------------------------------
    def _handle(self) -> int:
        if self._removed:
            raise CardRemovedError("the card was removed from the reader")
        if self._hcard is None:
            raise CardError("the card connection is closed")
        return self._hcard

    def _lost(self, hresult: int, doing: str) -> CardError:
        """A failed exchange is a pulled card once pcscd notices (it polls every 0.4 s)."""
        deadline = time.monotonic() + REMOVAL_SETTLE
        first = None
        while True:
            status = hresult & 0xFFFFFFFF
            if status in (scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD):
                self._removed = True
                return CardRemovedError(f"the card was removed during the {doing}")
            err = error_for(status, doing) if status else None
            if err is not None and type(err) is not CardError:  # service down, timeout, ...
                return err
            first = first or err
            if time.monotonic() > deadline:
                return first or CardError(f"the card gave no valid answer to the {doing}")
            time.sleep(0.05)
            hresult = scard.SCardStatus(self._hcard)[0]

    def _transmit(self, apdu: bytes, doing: str) -> tuple[bytes, int]:
        hresult, response = scard.SCardTransmit(self._handle(), self._pci, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS or len(response) < 2:
            raise self._lost(hresult, doing)
        return bytes(response[:-2]), response[-2] << 8 | response[-1]

    def _run(self, apdu: bytes, doing: str) -> bytes:
        data, sw = self._transmit(apdu, doing)
        check_sw(sw, doing)
        return data

    def start(self) -> None:
        for apdu in self.dialect.session_start():
            self._run(apdu, "card type selection")

    # -- CardConnection --------------------------------------------------------------------------
    def atr(self) -> bytes:
        hresult, _name, _state, _proto, atr = scard.SCardStatus(self._handle())
        if hresult != scard.SCARD_S_SUCCESS:
            raise self._lost(hresult, "status check")
        return bytes(atr)

    def read(self, addr: int, length: int) -> bytes:
        if addr < 0 or length < 0 or addr + length > MEMORY:
            raise ValueError(f"read outside card memory: {addr}+{length}")
        out = b""
        step = self.dialect.chunk
        for at in range(addr, addr + length, step):
            n = min(step, addr + length - at)
            data = self._run(self.dialect.read(at, n), "read")
            if len(data) < n:
                raise CardError(f"the card answered {len(data)} bytes to a read of {n}")
            out += data[:n]  # some ACS readers append the protection bytes
        return out

    def write(self, addr: int, data: bytes) -> None:
        if addr < 0 or addr + len(data) > MEMORY:
            raise ValueError(f"write outside card memory: {addr}+{len(data)}")
        data, step = bytes(data), self.dialect.chunk
        for i in range(0, len(data), step):
            self._run(self.dialect.write(addr + i, data[i:i + step]), "write")

    def present_psc(self, psc: bytes) -> int:
        if len(psc) != 3:
            raise ValueError("a PSC is 3 bytes")
        _data, sw = self._transmit(self.dialect.present(bytes(psc)), "PSC check")
        return self.dialect.parse_present(sw)

    def tries_left(self) -> int:
        data, sw = self._transmit(self.dialect.tries(), "PSC counter read")
        return self.dialect.parse_tries(data, sw)

    def protection_bits(self) -> bytes:
        bits = self._run(self.dialect.read_protection(), "protection read")
        if len(bits) < 4:
            raise CardError("the card answered a short protection memory")
        return bits[:4]

    def protect(self, addr: int, data: bytes) -> None:
        if addr < 0 or addr + len(data) > PROTECTED_AREA:
            raise ValueError("protection exists only for bytes 0-31")
        self._run(self.dialect.protect(addr, bytes(data)), "protection write")

    def change_psc(self, new_psc: bytes) -> None:
        if len(new_psc) != 3:
            raise ValueError("a PSC is 3 bytes")
        self._run(self.dialect.change_psc(bytes(new_psc)), "PSC change")

    def close(self) -> None:
        """Unpower the card (ends PSC verification); a pulled card or dead service is no error."""
        if self._hcard is not None:
            scard.SCardDisconnect(self._hcard, scard.SCARD_UNPOWER_CARD)
            self._hcard = None
        if self._ctx is not None:
            scard.SCardReleaseContext(self._ctx)
            self._ctx = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PcscReader:
    """One PC/SC reader slot, chosen by name or name substring."""

    def __init__(self, name: str, dialect: str = "acs", timeout: float = DEFAULT_TIMEOUT) -> None:
        self.name = name
        self.dialect_name = dialect
        self.dialect = pick(dialect, name)
        self.timeout = float(timeout)
        self._observer = None

    def card_present(self) -> bool:
        ctx = _context()
        try:
            return bool(_card_state(ctx, self.name) & scard.SCARD_STATE_PRESENT)
        finally:
            scard.SCardReleaseContext(ctx)

    def connect(self) -> PcscConnection:
        """Exclusive connection; waits up to ``timeout`` while another program holds the card."""
        ctx = _context()
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                hresult, hcard, proto = scard.SCardConnect(
                    ctx, self.name, scard.SCARD_SHARE_EXCLUSIVE,
                    scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
                if hresult == scard.SCARD_S_SUCCESS:
                    break
                if hresult != scard.SCARD_E_SHARING_VIOLATION or time.monotonic() > deadline:
                    raise error_for(hresult, "connection")
                time.sleep(0.05)
        except BaseException:
            scard.SCardReleaseContext(ctx)
            raise
        conn = PcscConnection(ctx, hcard, proto, self.dialect)
        try:
            conn.start()
        except BaseException:
            conn.close()
            raise
        return conn

    # -- events ----------------------------------------------------------------------------------
    def subscribe(self, callback) -> None:
        """Call ``callback("inserted" | "removed")`` from pyscard's monitor thread for this reader.

        A card already in the reader is reported as inserted straight away."""
        from smartcard.CardMonitoring import CardMonitor, CardMonitoringThread, CardObserver
        from smartcard.Exceptions import SmartcardException
        from smartcard.pcsc.PCSCExceptions import BaseSCardException

        self.unsubscribe()
        scard.SCardReleaseContext(_context())  # ReaderError now rather than a dead monitor thread
        name = self.name

        class _Observer(CardObserver):
            def update(self, observable, handlers):
                added, removed = handlers
                for event, cards in (("removed", removed), ("inserted", added)):
                    if any(str(c.reader) == name for c in cards):
                        try:
                            callback(event)
                        except Exception:  # an escaping error would end pyscard's monitor thread
                            log.exception("card %s callback failed", event)

        monitor_thread = CardMonitoringThread.instance
        if monitor_thread is not None and not monitor_thread.is_alive():
            # the singleton thread ends for good when pcscd goes away; start a new one
            CardMonitoringThread.instance = None
            CardMonitor.instance = None
        try:
            observer = _Observer()
            CardMonitor().addObserver(observer)
        except (SmartcardException, BaseSCardException) as exc:
            raise translate(exc, "card monitoring") from None
        self._observer = observer

    def unsubscribe(self) -> None:
        if self._observer is not None:
            from smartcard.CardMonitoring import CardMonitor

            CardMonitor().deleteObserver(self._observer)
            self._observer = None
            _stop_idle_monitor()

    def close(self) -> None:
        self.unsubscribe()


def _stop_idle_monitor() -> None:
    """End pyscard's monitor thread once nobody listens; it would otherwise wait on pcscd until the
    process exits (and print tracebacks if pcscd stops first). SCardCancel wakes it at once."""
    from smartcard.CardMonitoring import CardMonitor, CardMonitoringThread

    monitor, thread = CardMonitor.instance, CardMonitoringThread.instance
    if monitor is None or thread is None or monitor.countObservers():
        return
    thread.stop()
    request = getattr(getattr(thread, "cardrequest", None), "pcsccardrequest", None)
    if getattr(request, "hcontext", None) is not None:
        scard.SCardCancel(request.hcontext)
    thread.join(2)
    CardMonitoringThread.instance = None
    CardMonitor.instance = None


def resolve(wanted: str) -> str:
    """The full reader name for a name or substring (first reader when empty)."""
    names = list_readers()
    if not names:
        raise ReaderError("no card reader is connected")
    if not wanted:
        return names[0]
    matches = [n for n in names if n == wanted] or [n for n in names if wanted.lower() in n.lower()]
    if not matches:
        raise ReaderError(f"no card reader matches {wanted!r}; connected: {', '.join(names)}")
    return matches[0]


def open_reader(settings: dict) -> PcscReader:
    return PcscReader(resolve(settings.get("reader", "")), settings.get("dialect", "acs"),
                      settings.get("timeout", DEFAULT_TIMEOUT))
