"""The device manager: one I/O worker thread per card reader.

pyscard connections and serial ports are not safe to share across threads, so every operation on a
reader -- card I/O, and the sale or card-tool use case around it -- runs as a job on that reader's own
worker thread, in submission order (Electrum's DeviceMgr and calibre's device job queue work this
way). Between jobs the worker watches the reader and publishes state changes and insert/remove events
to listeners. Listeners are called on the worker thread; a GUI host marshals them to its own thread.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import attrs

from .errors import CardTimeoutError, DbmisError, ReaderError

log = logging.getLogger(__name__)
T = TypeVar("T")
_WAKE = "wake"  # queue token: look at the reader now


class ReaderState(enum.StrEnum):
    NO_READER = "no reader"
    NO_CARD = "no card"
    CARD_PRESENT = "card present"
    BUSY = "busy"
    ERROR = "error"


@attrs.frozen
class DeviceEvent:
    """``kind`` is "state", "inserted" or "removed"; ``detail`` says why for NO_READER/ERROR."""

    kind: str
    state: ReaderState
    detail: str = ""


class DeviceManager:
    def __init__(self, open_reader: Callable[[], Any], name: str = "reader",
                 poll_interval: float = 0.25, reopen_interval: float = 2.0) -> None:
        self._open_reader = open_reader
        self.name = name
        self.poll_interval = poll_interval
        self.reopen_interval = reopen_interval
        self._jobs: queue.Queue = queue.Queue()
        self._listeners: list[Callable[[DeviceEvent], None]] = []
        self._lock = threading.Lock()
        self._reader = None
        self._present: bool | None = None
        self._next_open = 0.0
        self._open_error = ""
        self.state = ReaderState.NO_READER
        self.detail = "starting"
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "DeviceManager":
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"dbmis-device-{self.name}",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._jobs.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def subscribe(self, listener: Callable[[DeviceEvent], None]) -> None:
        with self._lock:
            self._listeners.append(listener)
        self._notify(listener, DeviceEvent("state", self.state, self.detail))

    def unsubscribe(self, listener: Callable[[DeviceEvent], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    # -- jobs --------------------------------------------------------------------------------
    def submit(self, fn: Callable[..., T], *args, **kwargs) -> "Future[T]":
        """Run ``fn(*args, **kwargs)`` on the worker thread; returns a Future (cancel() works until
        the job starts)."""
        if self._thread is None:
            raise ReaderError(f"device manager for {self.name} is not running")
        fut: Future = Future()
        self._jobs.put((fut, fn, args, kwargs))
        return fut

    def call(self, fn: Callable[..., T], *args, timeout: float | None = 30.0, **kwargs) -> T:
        """Run on the worker thread and wait. On timeout the job is cancelled if it has not started;
        a job already talking to the card finishes in the background and its result is dropped."""
        fut = self.submit(fn, *args, **kwargs)
        try:
            return fut.result(timeout)
        except FutureTimeout:
            fut.cancel()
            raise CardTimeoutError(f"the {self.name} did not finish within {timeout:g} s") from None
        except CancelledError:
            raise ReaderError("the operation was cancelled") from None

    # -- worker ------------------------------------------------------------------------------
    def _emit(self, event: DeviceEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            self._notify(listener, event)

    @staticmethod
    def _notify(listener, event: DeviceEvent) -> None:
        try:
            listener(event)
        except Exception:  # a broken listener must not stop the device
            log.exception("device listener failed")

    def _set_state(self, state: ReaderState, detail: str = "") -> None:
        if (state, detail) != (self.state, self.detail):
            self.state, self.detail = state, detail
            self._emit(DeviceEvent("state", state, detail))

    def _ensure_reader(self) -> bool:
        if self._reader is not None:
            return True
        if time.monotonic() < self._next_open:
            return False
        try:
            self._reader = self._open_reader()
        except DbmisError as exc:
            self._next_open = time.monotonic() + self.reopen_interval
            self._open_error = str(exc)
            self._set_state(ReaderState.NO_READER, str(exc))
            return False
        self._open_error = ""
        if hasattr(self._reader, "subscribe"):  # drivers with native events wake the worker at once
            try:
                self._reader.subscribe(lambda _kind: self._jobs.put(_WAKE))
            except DbmisError as exc:
                self._drop_reader(str(exc))
                return False
        return True

    def _poll(self) -> None:
        if not self._ensure_reader():
            return
        try:
            present = bool(self._reader.card_present())
        except DbmisError as exc:
            self._drop_reader(str(exc))
            return
        if self._present is not None and present != self._present:
            self._emit(DeviceEvent("inserted" if present else "removed",
                                   ReaderState.CARD_PRESENT if present else ReaderState.NO_CARD))
        self._present = present
        self._set_state(ReaderState.CARD_PRESENT if present else ReaderState.NO_CARD)

    def _drop_reader(self, why: str) -> None:
        try:
            if self._reader is not None:
                if hasattr(self._reader, "unsubscribe"):
                    self._reader.unsubscribe()
                self._reader.close()
        except Exception:
            log.debug("closing a failed reader", exc_info=True)
        self._reader, self._present = None, None
        self._next_open = time.monotonic() + self.reopen_interval
        self._open_error = why
        self._set_state(ReaderState.NO_READER, why)

    @property
    def reader(self):
        """The open reader; only for jobs running on the worker thread."""
        if threading.current_thread() is not self._thread:
            raise ReaderError("reader used outside its device worker thread")
        if not self._ensure_reader():
            raise ReaderError(self._open_error or f"{self.name} is not available")
        return self._reader

    def _run(self, fut: Future, fn, args, kwargs) -> None:
        if not fut.set_running_or_notify_cancel():
            return
        self._set_state(ReaderState.BUSY)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            fut.set_exception(exc)
            if isinstance(exc, ReaderError):
                self._drop_reader(str(exc))
        else:
            fut.set_result(result)

    def _loop(self) -> None:
        self._poll()
        while not self._stopping.is_set():
            try:
                job = self._jobs.get(timeout=self.poll_interval)
            except queue.Empty:
                self._poll()
                continue
            if job is None:
                break
            if job != _WAKE:
                self._run(*job)
            self._poll()
        if self._reader is not None:
            try:
                self._reader.close()
            except Exception:
                log.debug("closing reader at stop", exc_info=True)
