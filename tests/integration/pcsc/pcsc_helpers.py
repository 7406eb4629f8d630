"""Helpers for the PC/SC tests: the virtual reader's slot and an event recorder."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from dbmis_pcsc.testing import CardEmulator, reader_name
from dbmis_sim.sle4442 import SimCardConnection, new_card_file

READER = reader_name(0)
DIALECTS = ["acs", "omnikey"]


class Slot:
    """The virtual reader's slot: holds at most one emulated card."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.emulator: CardEmulator | None = None

    def blank(self) -> Path:
        path = self.folder / f"{uuid.uuid4().hex[:12]}.card"
        new_card_file(path)
        return path

    def insert(self, path: Path, dialect: str = "acs") -> CardEmulator:
        self.remove()
        self.emulator = CardEmulator(lambda: SimCardConnection(path), dialect).insert()
        return self.emulator

    def new_card(self, dialect: str = "acs") -> Path:
        path = self.blank()
        self.insert(path, dialect)
        return path

    def remove(self) -> None:
        if self.emulator is not None:
            self.emulator.remove()
            self.emulator = None


class Recorder:
    """Collects events a callback receives on another thread."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.cond = threading.Condition()

    def __call__(self, event: str) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_for(self, event: str, count: int = 1, timeout: float = 5.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.events.count(event) >= count, timeout), \
                f"no {event!r} event (#{count}) in {self.events}"
