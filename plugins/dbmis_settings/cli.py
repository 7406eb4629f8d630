"""``dbmis settings``, ``dbmis code``, ``dbmis meter-store`` (also ``dbmis meter store``) and
``dbmis personnel``: commands call services only."""

from __future__ import annotations

import click

from dbmis_core.clikit import app_and_operator, emit


def _show(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return "" if v is None else str(v)


def _setting_dict(v) -> dict:
    return {"name": v.name, "value": v.value, "source": v.source, "default": v.default,
            "description": v.description, "updated_by": v.updated_by, "updated_at": v.updated_at}


# -- settings ---------------------------------------------------------------------------------------
@click.group("settings")
def settings_group():
    """System parameters kept in the database (utility, station, limits, backup, idle lock)."""


@settings_group.command("list")
def settings_list():
    """List every parameter with its value and where the value comes from."""
    from dbmis_core.services import settings

    app, op = app_and_operator()
    rows = settings.list_settings(app, op)
    width = max(len(v.name) for v in rows)
    emit([_setting_dict(v) for v in rows],
         "\n".join(f"{v.name.ljust(width)}  {_show(v.value):<22} ({v.source})  {v.description}"
                   for v in rows))


@settings_group.command("get")
@click.argument("name")
def settings_get(name):
    """Show one parameter."""
    from dbmis_core.services import settings

    app, op = app_and_operator()
    v = settings.get(app, op, name)
    emit(_setting_dict(v), f"{v.name} = {_show(v.value)} ({v.source}; default {_show(v.default)})")


@settings_group.command("set")
@click.argument("name")
@click.argument("value", required=False)
@click.option("--reset", is_flag=True, help="Remove the database value (config or default again).")
def settings_set(name, value, reset):
    """Set parameter NAME to VALUE (checked with its type and the rules between parameters)."""
    from dbmis_core.errors import ValidationError
    from dbmis_core.services import settings

    app, op = app_and_operator()
    if reset == (value is not None):
        raise ValidationError("give a VALUE or --reset")
    v = settings.reset(app, op, name) if reset else settings.set_value(app, op, name, value)
    emit(_setting_dict(v), f"{v.name} = {_show(v.value)} ({v.source})")


# -- code tables ------------------------------------------------------------------------------------
KIND = click.Choice(["category", "region", "line", "district", "model", "manufacturer", "payment"])


def _entry_dict(e) -> dict:
    return {"kind": e.kind, "code": e.code, "name": e.name, "active": e.active, "parent": e.parent,
            "builtin": e.builtin, **e.details}


def _entry_text(e) -> str:
    extra = [f"parent {e.parent}"] if e.parent else []
    extra += [f"{k} {_show(v)}" for k, v in e.details.items() if v not in (None, "")]
    flags = (" (built-in)" if e.builtin else "") + ("" if e.active else " (inactive)")
    return f"{e.code:<16} {e.name}{flags}" + (f"  [{', '.join(extra)}]" if extra else "")


@click.group("code")
def code_group():
    """Code tables: categories, regions/lines/districts, meter models, manufacturers, payments."""


@code_group.command("list")
@click.argument("kind", type=KIND)
@click.option("--active", "active_only", is_flag=True, help="Only active entries.")
def code_list(kind, active_only):
    """List the entries of a code table."""
    from dbmis_core.services import codes

    app, op = app_and_operator()
    entries = codes.list_entries(app, op, kind, active_only=active_only)
    emit([_entry_dict(e) for e in entries], "\n".join(_entry_text(e) for e in entries)
         or f"no {kind} entries")


def _model_options(f):
    for opt in (click.option("--constant", default=None, help="Model: impulses per kWh."),
                click.option("--phases", default=None, help="Model: 1 or 3."),
                click.option("--rated-amps", default=None, help="Model: rated current."),
                click.option("--credit-unit", default=None, help="Model: kwh or money."),
                click.option("--manufacturer", default=None, help="Model: manufacturer code."),
                click.option("--country", default=None, help="Manufacturer: country.")):
        f = opt(f)
    return f


@code_group.command("add")
@click.argument("kind", type=KIND)
@click.argument("code")
@click.argument("name", required=False)
@click.option("--parent", default=None, help="Line: its region; district: its line.")
@_model_options
def code_add(kind, code, name, parent, **details):
    """Add CODE (with NAME) to a code table."""
    from dbmis_core.services import codes

    app, op = app_and_operator()
    e = codes.add(app, op, kind, code, name, parent=parent,
                  **{k: v for k, v in details.items() if v is not None})
    emit(_entry_dict(e), f"{kind} added: {_entry_text(e)}")


@code_group.command("change")
@click.argument("kind", type=KIND)
@click.argument("code")
@click.option("--name", default=None, help="New name.")
@click.option("--parent", default=None, help="Move a line or district under another parent.")
@_model_options
def code_change(kind, code, name, parent, **details):
    """Rename an entry, move it in the region hierarchy, or change a meter model."""
    from dbmis_core.services import codes

    app, op = app_and_operator()
    e = codes.change(app, op, kind, code, name=name, parent=parent,
                     **{k: v for k, v in details.items() if v is not None})
    emit(_entry_dict(e), f"{kind} changed: {_entry_text(e)}")


@code_group.command("deactivate")
@click.argument("kind", type=KIND)
@click.argument("code")
@click.option("--activate", is_flag=True, help="Make the entry active again.")
def code_deactivate(kind, code, activate):
    """Deactivate an entry (kept for history; not offered for new records)."""
    from dbmis_core.services import codes

    app, op = app_and_operator()
    e = codes.set_active(app, op, kind, code, activate)
    emit(_entry_dict(e), f"{kind} {e.code} {'activated' if activate else 'deactivated'}")


# -- meter store ------------------------------------------------------------------------------------
@click.group("meter-store")
def meter_store_group():
    """The meter store: list meters by status, change a status, history, import a batch."""


@meter_store_group.command("list")
@click.option("--status", default=None, help="in_store, installed, removed, under_test, faulty, "
              "scrapped.")
@click.option("--meter", "text", default="", help="Meter numbers starting with this.")
def store_list(status, text):
    """List meters (by status)."""
    from dbmis_core.services import meterstore

    app, op = app_and_operator()
    rows = meterstore.list_meters(app, op, status=status, text=text)
    emit([{"meter_no": m.meter_no, "model": m.model, "manufacturer": m.manufacturer,
           "status": m.status, "account_no": m.account_no} for m in rows],
         "\n".join(f"{m.meter_no}  {m.model:<10} {m.status:<11} {m.account_no or ''}"
                   for m in rows) or "no meters")


@meter_store_group.command("status")
@click.argument("meter_no")
@click.argument("status")
@click.option("--note", default="", help="Why (shown in the history).")
def store_status(meter_no, status, note):
    """Move METER_NO to STATUS (under_test, faulty, scrapped, in_store ...)."""
    from dbmis_core.services import meterstore

    app, op = app_and_operator()
    ev = meterstore.change_status(app, op, meter_no, status, note)
    emit({"meter_no": meter_no, "from": ev.from_status, "to": ev.to_status, "note": ev.note},
         f"meter {meter_no}: {ev.from_status} -> {ev.to_status}")


@meter_store_group.command("history")
@click.argument("meter_no")
def store_history(meter_no):
    """The status history of a meter."""
    from dbmis_core.services import meterstore

    app, op = app_and_operator()
    events = meterstore.history(app, op, meter_no)
    emit([{"at": e.at, "from": e.from_status, "to": e.to_status, "kind": e.kind,
           "operator": e.operator, "note": e.note} for e in events],
         "\n".join(f"{e.at.astimezone():%Y-%m-%d %H:%M}  {e.from_status or '-':>10} -> "
                   f"{e.to_status:<10} {e.kind:<8} {e.operator:<10} {e.note}" for e in events))


@meter_store_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the file only; write nothing.")
def store_import(file, dry_run):
    """Add the meters of a CSV or XLSX file (columns meter_no, model[, note]) to the store.
    Any wrong row: nothing is written and every problem is listed (exit status 1)."""
    from dbmis_core.services import meterstore

    app, op = app_and_operator()
    rep = meterstore.import_meters(app, op, file, dry_run=dry_run)
    data = {"file": rep.file, "rows": rep.rows, "ok": rep.ok, "dry_run": rep.dry_run,
            "added": len(rep.added),
            "errors": [{"row": e.row, "column": e.column, "value": e.value, "reason": e.reason}
                       for e in rep.errors]}
    if rep.errors:
        lines = [f"{rep.file}: {len(rep.errors)} problem(s) in {rep.rows} rows; nothing imported"]
        lines += [f"  row {e.row}, {e.column or '-'}: {e.reason}"
                  + (f" ({e.value!r})" if e.value else "") for e in rep.errors]
        emit(data, "\n".join(lines))
        from dbmis_core.errors import ValidationError

        raise ValidationError(f"{rep.file}: nothing imported ({len(rep.errors)} problem(s))")
    emit(data, f"{rep.file}: {rep.rows} rows checked, no problems (dry run; nothing written)"
         if dry_run else f"{rep.file}: {len(rep.added)} meters added to the store")


# -- personnel --------------------------------------------------------------------------------------
def _person_dict(p) -> dict:
    return {"employee_no": p.employee_no, "name": p.name, "title": p.title, "phone": p.phone,
            "operator_login": p.operator_login, "active": p.active}


@click.group("personnel")
def personnel_group():
    """Personnel records (inspectors, fitters...), with an optional operator login."""


@personnel_group.command("list")
@click.option("--active", "active_only", is_flag=True, help="Only people still employed.")
def personnel_list(active_only):
    """List personnel."""
    from dbmis_core.services import personnel

    app, op = app_and_operator()
    people = personnel.list_people(app, op, active_only=active_only)
    emit([_person_dict(p) for p in people],
         "\n".join(f"{p.employee_no:<10} {p.name:<24} {p.title:<18} {p.phone:<14} "
                   f"{p.operator_login or ''}{'' if p.active else ' (left)'}" for p in people)
         or "no personnel")


@personnel_group.command("add")
@click.argument("employee_no")
@click.argument("name")
@click.option("--title", default="", help="Role or title (e.g. Inspector).")
@click.option("--phone", default="")
@click.option("--login", "operator_login", default=None, help="The operator login they use.")
def personnel_add(employee_no, name, title, phone, operator_login):
    """Add a person."""
    from dbmis_core.services import personnel

    app, op = app_and_operator()
    p = personnel.add(app, op, employee_no, name, title, phone, operator_login)
    emit(_person_dict(p), f"{p.employee_no} {p.name} added")


@personnel_group.command("change")
@click.argument("employee_no")
@click.option("--name", default=None)
@click.option("--title", default=None)
@click.option("--phone", default=None)
@click.option("--login", "operator_login", default=None, help='Operator login ("" unlinks).')
@click.option("--active/--inactive", default=None, help="Still employed or left.")
def personnel_change(employee_no, name, title, phone, operator_login, active):
    """Change a person's record."""
    from dbmis_core.services import personnel

    app, op = app_and_operator()
    p = personnel.change(app, op, employee_no, name=name, title=title, phone=phone,
                         operator_login=operator_login, active=active)
    emit(_person_dict(p), f"{p.employee_no} {p.name} changed")
