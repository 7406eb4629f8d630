"""Entry point of the simulated driver: registers the reader and the meter simulator commands."""

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import CliCommand, DriverSpec


@hookimpl
def dbmis_card_drivers():
    from .reader import enumerate_readers, open_reader

    return [DriverSpec(name="sim", title="Simulated SLE4442 reader", open=open_reader,
                       enumerate=enumerate_readers)]


@hookimpl
def dbmis_cli_commands():
    def factory():
        from .cli import sim_group

        return sim_group

    return [CliCommand(name="sim", factory=factory)]
