"""Receipts rendered from jinja2 templates (text for an 80 mm printer)."""

from __future__ import annotations

from functools import lru_cache

import jinja2


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("dbmis_core", "templates"),
                              autoescape=False, trim_blocks=False, keep_trailing_newline=True)


def render_receipt_text(vend, utility_name: str | None, copy: bool = False) -> str:
    """``vend`` is a VendRow or any object with the same attributes (and .customer, .meter)."""
    return _env().get_template("receipt.txt.j2").render(v=vend, copy=copy,
                                                         utility=utility_name or "DBMIS")
