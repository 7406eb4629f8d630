from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import CardFormatSpec


@hookimpl
def dbmis_card_formats():
    def factory(keys):
        from .format import RefCardFormat

        return RefCardFormat(keys)

    return [CardFormatSpec(name="dbmis-ref", title="DBMIS reference SLE4442 format", factory=factory)]
