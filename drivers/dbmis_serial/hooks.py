"""Entry point of the serial encoder driver. Registering it imports no pyserial: that waits for open."""

from importlib.util import find_spec

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import DriverSpec


@hookimpl
def dbmis_card_drivers():
    from .reader import list_ports, open_reader

    missing = None if find_spec("serial") else "pyserial is not installed (pip install pyserial)"
    return [DriverSpec(name="serial", title="Serial card encoder (DBMIS encoder protocol)",
                       open=open_reader, enumerate=list_ports, unavailable=missing)]
