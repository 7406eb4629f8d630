"""Entry point of the PC/SC driver.

pyscard is imported only when a reader is opened, so ``dbmis --help`` stays fast and a machine
without pyscard still starts and lists the driver as unavailable.
"""

from importlib.util import find_spec

from dbmis_core.errors import ReaderError
from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import DriverSpec

TITLE = "PC/SC reader (pyscard) for SLE4442 cards"


def _reader_module():
    try:
        from . import reader
    except ImportError as exc:  # installed but broken, e.g. libpcsclite missing
        raise ReaderError(f"pyscard cannot be loaded ({exc})") from None
    return reader


def open_reader(settings: dict):
    return _reader_module().open_reader(settings)


def list_readers(settings: dict) -> list[str]:
    return _reader_module().list_readers(settings)


@hookimpl
def dbmis_card_drivers():
    missing = None
    if find_spec("smartcard") is None:
        missing = ("pyscard is not installed (pip install 'dbmis[pcsc]'; it builds against "
                   "libpcsclite-dev)")
    return [DriverSpec(name="pcsc", title=TITLE, open=open_reader, enumerate=list_readers,
                       unavailable=missing)]
