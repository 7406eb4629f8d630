"""``dbmis tariff list|history|set|quote``: tariff versions from the command line (services only)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from dbmis_core.clikit import app_and_operator, emit
from dbmis_core.errors import ValidationError


def parse_when(text: str, tz) -> datetime | None:
    """``now`` (None), or an ISO date / date-time; without a zone it is read in ``tz`` (the
    ``[tariff] period_timezone``, UTC unless configured)."""
    if text.strip().lower() == "now":
        return None
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"--from must be 'now' or a date like 2025-07-01 or "
                              f"2025-07-01T06:00, got {text!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=tz)


def _version(v) -> dict:
    return {"id": v.id, "tariff": v.tariff, "effective_from": v.effective_from, "state": v.state,
            "settings": v.settings, "note": v.note, "created_by": v.created_by,
            "created_at": v.created_at}


@click.group("tariff")
def tariff_group():
    """Tariffs: list them, see and add versions with effective dates, price a purchase."""


@tariff_group.command("list")
def list_cmd():
    """Installed tariffs, the version in force and the next planned change."""
    from dbmis_core.services import tariffs

    app, op = app_and_operator()
    rows = tariffs.list_tariffs(app, op)
    emit(rows, "\n".join(_list_line(r) for r in rows) + "\n(* = the default tariff; times in UTC)")


def _list_line(r: dict) -> str:
    current = (f"version {r['in_force_version']} from {r['in_force_from']:%Y-%m-%d %H:%M}"
               if r["in_force_version"] else "configuration")
    planned = f"next {r['next_change']:%Y-%m-%d %H:%M}" if r["next_change"] else ""
    return (f"{'*' if r['default'] else ' '} {r['name']:<14} {r['period'] or '-':<6} {current:<32} "
            f"{planned:<22} {r['title']}")


@tariff_group.command("history")
@click.argument("name")
def history_cmd(name):
    """Every version of tariff NAME, oldest first."""
    from dbmis_core.services import tariffs

    app, op = app_and_operator()
    rows = [_version(v) for v in tariffs.history(app, op, name)]
    emit(rows, "\n".join(
        f"#{r['id']:<4} from {r['effective_from']:%Y-%m-%d %H:%M} UTC  {r['state']:<8} "
        f"by {r['created_by']:<10} {r['note']}\n      {r['settings']}" for r in rows)
        or f"tariff {name} has no versions; its [tariffs.{name}] configuration applies")


@tariff_group.command("set")
@click.argument("name")
@click.option("--from", "when", required=True,
              help="'now', or a date / date-time (ISO; without a zone: [tariff] period_timezone).")
@click.option("--settings", "settings_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A .toml or .json file with the tariff's settings.")
@click.option("--note", default="", help="Why the prices change (kept with the version).")
def set_cmd(name, when, settings_file, note):
    """Add a version of tariff NAME from a moment on (now or later; versions are never changed)."""
    from dbmis_core.services import tariffs

    app, op = app_and_operator()
    fmt = settings_file.suffix.lower().lstrip(".")
    if fmt not in ("toml", "json"):
        raise ValidationError(f"--settings must be a .toml or .json file, got {settings_file.name}")
    settings = tariffs.parse_settings_text(settings_file.read_text(encoding="utf-8"), fmt)
    v = tariffs.add_version(app, op, name, settings, parse_when(when, tariffs.period_timezone(app)),
                            note)
    emit(_version(v), f"tariff {name}: version {v.id} from {v.effective_from:%Y-%m-%d %H:%M:%S} UTC "
                      f"({v.state})")


@tariff_group.command("quote")
@click.argument("account_no")
@click.argument("amount")
def quote_cmd(account_no, amount):
    """What AMOUNT buys for ACCOUNT_NO now, line by line, without selling."""
    from dbmis_core.services import tariffs

    app, op = app_and_operator()
    p = tariffs.explain(app, op, account_no, amount)
    q = p.quote
    data = {"account_no": account_no, "tariff": p.tariff, "category": p.category,
            "version_id": p.version_id, "period": p.period, "period_start": p.period_start,
            "period_energy": p.period_energy, "amount": q.amount, "energy": q.energy,
            "unit_price": q.unit_price, "lines": [{"name": n, "amount": v} for n, v in q.lines]}
    head = (f"{account_no} ({p.category}) on tariff {p.tariff}, "
            + (f"version {p.version_id}" if p.version_id else "configured settings"))
    if p.period:
        head += f"; {p.period_energy} kWh bought this {p.period}"
    body = "\n".join(f"  {n:<28}{v:>14}" for n, v in q.lines)
    emit(data, f"{head}\n{body}\n  {'Total':<28}{q.amount:>14}\n"
               f"{q.amount} buys {q.energy} kWh (average {q.unit_price}/kWh)")
