"""Human or ``--json`` output for ``dbmis`` commands, shared by the host and plugin commands."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

import attrs
import click


def _default(o):
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if isinstance(o, Enum):
        return o.value if not isinstance(o.value, int) else o.name.lower()
    if attrs.has(type(o)):
        return attrs.asdict(o, recurse=False)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"cannot show {type(o).__name__} as JSON")


def to_json(data) -> str:
    return json.dumps(data, default=_default, indent=2, ensure_ascii=False)


def emit(data, human: str | None = None) -> None:
    """Print ``data`` as JSON when --json was given, else ``human`` (or a key: value listing)."""
    ctx = click.get_current_context()
    if ctx.find_root().params.get("as_json"):
        click.echo(to_json(data))
        return
    if human is not None:
        click.echo(human)
        return
    if isinstance(data, dict):
        width = max((len(str(k)) for k in data), default=0)
        for k, v in data.items():
            click.echo(f"{str(k).ljust(width)} : {'' if v is None else _plain(v)}")
    elif isinstance(data, list):
        for item in data:
            click.echo(_plain(item))
    else:
        click.echo(_plain(data))


def _plain(v) -> str:
    if isinstance(v, (dict, list)):
        return json.loads(to_json(v)).__repr__()
    try:
        return str(_default(v))
    except TypeError:
        return str(v)


def app_and_operator(need_operator: bool = True):
    """The Application of the running ``dbmis`` command and, if asked, the logged-in operator."""
    app = click.get_current_context().find_root().obj
    return (app, app.operator()) if need_operator else (app, None)
