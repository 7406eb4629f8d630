"""Background work for pages: jobs on the reader's worker thread, results on the GUI thread.

Card readers are not safe to share across threads, so every job (card I/O, database work, a sale)
runs on the device manager's worker thread (dbmis_core.devices) in submission order. A job never
touches widgets: it returns a value or raises, and the runner hands that back through queued signals.
"""

from __future__ import annotations

import itertools
import logging
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from collections.abc import Callable
from typing import Any

import attrs
from PyQt6.QtCore import QObject, pyqtSignal

from dbmis_core.errors import DbmisError
from dbmis_core.types import ERROR_STYLE

log = logging.getLogger(__name__)


def error_message(exc: BaseException) -> str:
    """One line a clerk can read; anything that is not a DbmisError is a bug and gets logged."""
    if isinstance(exc, DbmisError):
        return str(exc)
    log.error("unexpected error in background job", exc_info=exc)
    return f"unexpected error ({type(exc).__name__}: {exc}); please report it"


class _Signals(QObject):
    done = pyqtSignal(int, object)
    failed = pyqtSignal(int, object)


class BackgroundRunner(QObject):
    """Runs callables as jobs of the reader's device manager (one worker thread per device) and
    delivers results on the GUI thread; ``busy_changed`` drives the host's busy indicator."""

    busy_changed = pyqtSignal(bool)

    def __init__(self, devices, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.devices = devices.start()
        self._signals = _Signals(self)
        self._signals.done.connect(self._on_done)
        self._signals.failed.connect(self._on_failed)
        self._pending: dict[int, tuple[Callable, Callable]] = {}
        self._futures: dict[int, Future] = {}
        self._ids = itertools.count(1)

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def run(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
            on_error: Callable[[str], None]) -> None:
        job_id = next(self._ids)
        self._pending[job_id] = (on_done, on_error)
        if len(self._pending) == 1:
            self.busy_changed.emit(True)
        fut = self.devices.submit(fn)
        self._futures[job_id] = fut
        fut.add_done_callback(lambda f: self._deliver(job_id, f))

    def _deliver(self, job_id: int, fut: Future) -> None:
        """Called on the worker thread: queued signals carry the outcome to the GUI thread."""
        if fut.cancelled():
            self._signals.failed.emit(job_id, DbmisError("the operation was cancelled"))
        elif fut.exception() is not None:
            self._signals.failed.emit(job_id, fut.exception())
        else:
            self._signals.done.emit(job_id, fut.result())

    def _settle(self, job_id: int) -> tuple[Callable, Callable]:
        callbacks = self._pending.pop(job_id)
        self._futures.pop(job_id, None)
        if not self._pending:
            self.busy_changed.emit(False)
        return callbacks

    def _on_done(self, job_id: int, result: object) -> None:
        self._settle(job_id)[0](result)

    def _on_failed(self, job_id: int, exc: BaseException) -> None:
        self._settle(job_id)[1](error_message(exc))

    def wait(self, msecs: int = -1) -> bool:
        """Wait for submitted jobs (a sale must not be cut off mid-write when the window closes)."""
        done, not_done = futures_wait(list(self._futures.values()),
                                      timeout=None if msecs < 0 else msecs / 1000)
        return not not_done


@attrs.frozen
class PageContext:
    """What a plugin page's ``factory(ctx)`` receives from the host.

    ``app`` and ``operator`` are for service calls; ``run(fn, on_done, on_error)`` runs ``fn()`` off
    the GUI thread and calls ``on_done(result)`` or ``on_error(message)`` back on it; ``status(text)``
    shows a transient message in the status bar; ``run_reporting(label, fn, on_done)`` does what
    ``run`` does and keeps a page's message ``label`` up to date (working, cleared, or the error).
    """

    app: Any
    operator: Any
    runner: BackgroundRunner
    status: Callable[[str], None]

    def run(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
            on_error: Callable[[str], None]) -> None:
        self.runner.run(fn, on_done, on_error)

    def run_reporting(self, label, fn: Callable[[], Any], on_done: Callable[[Any], None]) -> None:
        label.setStyleSheet("")
        label.setText("Working...")

        def ok(result):
            label.setText("")
            on_done(result)

        def failed(text):
            label.setStyleSheet(ERROR_STYLE)
            label.setText(text)

        self.run(fn, ok, failed)
