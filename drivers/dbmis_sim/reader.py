"""The simulated reader: a folder holding a stock of card files and one slot.

    <folder>/cards/<UID>.card   every card ever made (the customer keeps them)
    <folder>/slot               symlink to the card that is in the reader
    <folder>/faults.json        optional faults for the next connection (see ``Faults``)

Separate processes (the clerk's host, the meter simulator, a test) share cards through these files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs

from dbmis_core.errors import NoCardError, ValidationError

from .sle4442 import Faults, SimCardConnection, new_card_file


class SimReader:
    def __init__(self, folder: str | os.PathLike, name: str = "DBMIS simulated reader 0",
                 faults: Faults | None = None) -> None:
        self.folder = Path(folder).absolute()
        self.name = name
        self.faults = faults
        (self.folder / "cards").mkdir(parents=True, exist_ok=True)
        # plain strings for the per-sale calls: pathlib's joins and resolve() cost more than the
        # card I/O itself
        self._slot = str(self.folder / "slot")
        self._cards = str(self.folder / "cards")
        self._faults_file = str(self.folder / "faults.json")

    @property
    def slot(self) -> Path:
        return Path(self._slot)

    def card_path(self, uid: str) -> Path:
        return Path(self._card_file(uid))

    def _card_file(self, uid: str) -> str:
        return f"{self._cards}/{uid.upper()}.card"

    def card_present(self) -> bool:
        return os.path.exists(self._slot)

    def inserted_uid(self) -> str | None:
        if not self.slot.is_symlink() or not self.slot.exists():
            return None
        return Path(os.readlink(self.slot)).stem

    def _take_faults(self) -> Faults | None:
        if self.faults is not None:
            return self.faults
        if not os.path.exists(self._faults_file):
            return None
        f = Path(self._faults_file)
        spec = json.loads(f.read_text())
        faults = Faults(**spec)
        if faults.once:
            f.unlink()
        return faults

    def connect(self) -> SimCardConnection:
        """Open the card in the slot; the connection keeps that card file open, whatever is
        inserted afterwards."""
        if not self.card_present():
            raise NoCardError("no card in the reader; insert a card")
        return SimCardConnection(self._slot, self._take_faults(), on_pull=self.eject)

    def new_card(self) -> str:
        """Take a blank card from stock and put it in the reader."""
        from .sle4442 import UID_LEN
        import secrets

        uid = secrets.token_bytes(UID_LEN)
        new_card_file(self.card_path(uid.hex()), uid)
        self.insert(uid.hex().upper())
        return uid.hex().upper()

    def insert(self, uid_or_path: str | os.PathLike) -> str:
        """Put a card in the reader (by UID from the stock, or by a card file path)."""
        p = os.fspath(uid_or_path)
        stock = self._card_file(p) if os.sep not in p else None
        if stock is not None and os.path.exists(stock):
            p = stock
        elif not os.path.exists(p):
            raise ValidationError(f"no simulated card {uid_or_path!s}")
        self.eject()
        os.symlink(os.path.abspath(p), self._slot)
        return os.path.splitext(os.path.basename(p))[0]

    def eject(self) -> None:
        try:
            os.unlink(self._slot)
        except FileNotFoundError:
            pass

    def inject(self, faults: Faults) -> None:
        """Arrange faults for the next connection made by any process."""
        (self.folder / "faults.json").write_text(json.dumps(attrs.asdict(faults)))

    def close(self) -> None:
        pass


def reader_folder(settings: dict) -> Path:
    return Path(settings.get("folder") or Path(settings["home"]) / "sim")


def open_reader(settings: dict) -> SimReader:
    return SimReader(reader_folder(settings))


def enumerate_readers(settings: dict) -> list[str]:
    return ["DBMIS simulated reader 0"]
