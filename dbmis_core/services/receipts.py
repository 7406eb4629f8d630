"""Receipts rendered from jinja2 templates (text for an 80 mm printer)."""

from __future__ import annotations

from functools import lru_cache

import jinja2
from sqlalchemy import select

from ..storage.models import UtilityRow


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("dbmis_core", "templates"),
                              autoescape=False, trim_blocks=False, keep_trailing_newline=True)


def render_receipt(app, vend_row, copy: bool = False) -> str:
    from sqlalchemy.orm import object_session

    session = object_session(vend_row)
    utility = session.scalar(select(UtilityRow)) if session else None
    return _env().get_template("receipt.txt.j2").render(
        v=vend_row, copy=copy, utility=utility.name if utility else "DBMIS")
