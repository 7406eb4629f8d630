"""Core commands of the ``dbmis`` program. They call services only; no business rules here."""

from __future__ import annotations

import os
import sys

import click

from dbmis_core.errors import ValidationError

from dbmis_core.clikit import emit


def _app():
    return click.get_current_context().find_root().obj


def _op():
    return _app().operator()


def _read_password(given: str | None, what: str) -> str:
    if given:
        return given
    env = os.environ.get("DBMIS_ADMIN_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        raise ValidationError(f"{what} needs a password: --admin-password or DBMIS_ADMIN_PASSWORD")
    return click.prompt(f"{what} password", hide_input=True, confirmation_prompt=True)


@click.command("init")
@click.option("--admin", default="admin", show_default=True, help="First administrator's login.")
@click.option("--admin-password", help="First administrator's password (or DBMIS_ADMIN_PASSWORD).")
@click.option("--demo", is_flag=True, help="Also seed the demo utility.")
def init_cmd(admin, admin_password, demo):
    """Create or upgrade the database, card keys and first administrator."""
    from sqlalchemy import select

    from dbmis_core.services import setup
    from dbmis_core.storage.db import upgrade
    from dbmis_core.storage.models import OperatorRow

    app = _app()
    upgrade(app.engine)
    with app.uow() as uow:
        need_admin = uow.session.scalar(select(OperatorRow).where(
            OperatorRow.role == "administrator")) is None
    pw = _read_password(admin_password, "administrator") if need_admin else None
    done = setup.init(app, admin, pw)
    if demo:
        from dbmis_core.services.auth import Operator

        done += _seed_demo(app, Operator(admin, "Administrator", "administrator"))
    emit({"database": app.config.database_url, "done": done},
         "\n".join(done) + f"\ndatabase: {app.config.database_url}")


def _seed_demo(app, op):
    from sqlalchemy import select

    from dbmis_core.services import setup
    from dbmis_core.storage.models import CustomerRow

    with app.uow() as uow:
        if uow.session.scalar(select(CustomerRow).where(CustomerRow.account_no == "100001")):
            return ["demo data already present"]
    return setup.seed_demo(app, op)


@click.command("demo")
def demo_cmd():
    """Seed a demo utility (regions, customers, meters, a clerk)."""
    done = _seed_demo(_app(), _op())
    emit({"done": done}, "\n".join(done))


# -- customers ---------------------------------------------------------------------------------
@click.group("customer")
def customer_group():
    """Add, show and find customers."""


@customer_group.command("add")
@click.argument("account_no")
@click.option("--name", required=True)
@click.option("--address", default="")
@click.option("--phone", default="")
@click.option("--category", default="residential", show_default=True)
@click.option("--district", help="Transformer district code.")
def customer_add(account_no, name, address, phone, category, district):
    """Register a customer."""
    from dbmis_core.domain import Customer
    from dbmis_core.services import registry

    app, op = _app(), _op()
    with app.uow() as uow:
        c = registry.add_customer(uow, op, Customer(account_no, name, address, phone, category,
                                                    district))
        uow.commit()
    emit(_customer_dict(c), f"customer {c.account_no} ({c.name}) added")


def _customer_dict(c):
    return {"account_no": c.account_no, "name": c.name, "address": c.address, "phone": c.phone,
            "category": c.category.value, "district": c.district_code}


@customer_group.command("show")
@click.argument("account_no")
def customer_show(account_no):
    """Show a customer with meter, cards, sales and consumption."""
    from sqlalchemy import select

    from dbmis_core.services import registry
    from dbmis_core.services.auth import Perm
    from dbmis_core.storage.models import CardRow, MeterReturnRow, VendRow

    app, op = _app(), _op()
    op.require(Perm.VIEW)
    with app.uow() as uow:
        row = registry.get_customer_row(uow, account_no)
        data = _customer_dict(registry.customer_from_row(row))
        meter = registry.current_meter(uow, row)
        data["meter"] = meter.meter_no if meter else None
        data["last_sequence"] = meter.last_sequence if meter else None
        data["cards"] = [{"uid": c.uid, "status": c.status} for c in uow.session.scalars(
            select(CardRow).where(CardRow.customer_id == row.id))]
        data["sales"] = [{"sequence": v.sequence, "amount": v.amount, "energy": v.energy,
                          "state": v.state, "receipt": v.receipt_no, "at": v.created_at}
                         for v in uow.session.scalars(select(VendRow).where(
                             VendRow.customer_id == row.id).order_by(VendRow.id))]
        data["returns"] = [{"written_at": r.written_at, "last_sequence": r.last_sequence,
                            "remaining": r.remaining, "cumulative_consumed": r.cumulative_consumed,
                            "consumed": r.consumed_since_previous}
                           for r in uow.session.scalars(select(MeterReturnRow).where(
                               MeterReturnRow.customer_id == row.id)
                               .order_by(MeterReturnRow.written_at))]
    lines = [f"{k:14}: {data[k]}" for k in ("account_no", "name", "address", "phone", "category",
                                           "district", "meter", "last_sequence")]
    lines += [f"card          : {c['uid']} ({c['status']})" for c in data["cards"]]
    lines += [f"sale          : #{s['sequence']} {s['amount']} -> {s['energy']} kWh {s['state']} "
              f"{s['receipt'] or ''}" for s in data["sales"]]
    lines += [f"return        : {r['written_at']:%Y-%m-%d} seq {r['last_sequence']} remaining "
              f"{r['remaining']} consumed {r['consumed']}" for r in data["returns"]]
    emit(data, "\n".join(lines))


@customer_group.command("find")
@click.argument("text")
def customer_find(text):
    """Find customers by partial account number or name."""
    from dbmis_core.services import registry

    app, op = _app(), _op()
    with app.uow() as uow:
        found = [_customer_dict(c) for c in registry.find_customers(uow, op, text)]
    emit(found, "\n".join(f"{c['account_no']}  {c['name']}  {c['address']}" for c in found)
         or "no customer found")


# -- meters ------------------------------------------------------------------------------------
@click.group("meter")
def meter_group():
    """Add meters to the store and install them."""


@meter_group.command("add")
@click.argument("meter_no")
@click.option("--model", required=True, help="Meter model code.")
def meter_add(meter_no, model):
    """Add a meter to the meter store."""
    from dbmis_core.domain import Meter
    from dbmis_core.services import registry

    app, op = _app(), _op()
    with app.uow() as uow:
        m = registry.add_meter(uow, op, Meter(meter_no, model))
        uow.commit()
    emit({"meter_no": m.meter_no, "model": m.model_code, "status": m.status.value},
         f"meter {m.meter_no} added to the store")


@meter_group.command("install")
@click.argument("meter_no")
@click.argument("account_no")
def meter_install(meter_no, account_no):
    """Install a meter from the store at a customer."""
    from dbmis_core.services import registry

    app, op = _app(), _op()
    with app.uow() as uow:
        m = registry.install_meter(uow, op, meter_no, account_no)
        uow.commit()
    emit({"meter_no": m.meter_no, "account_no": m.customer_account, "status": m.status.value},
         f"meter {m.meter_no} installed for {m.customer_account}")


@meter_group.command("show")
@click.argument("meter_no")
def meter_show(meter_no):
    """Show a meter."""
    from dbmis_core.services import registry
    from dbmis_core.services.auth import Perm

    app, op = _app(), _op()
    op.require(Perm.VIEW)
    with app.uow() as uow:
        m = registry.meter_from_row(registry.get_meter_row(uow, meter_no))
    emit({"meter_no": m.meter_no, "model": m.model_code, "status": m.status.value,
          "account_no": m.customer_account, "last_sequence": m.last_sequence})


# -- cards -------------------------------------------------------------------------------------
@click.group("card")
def card_group():
    """Issue and read user cards; card tools: read any card, write service cards, import their
    data, and the service-card log."""


@card_group.command("issue")
@click.argument("account_no")
def card_issue(account_no):
    """Issue a user card for the customer on the blank card in the reader."""
    from dbmis_core.services import cards

    uid = cards.issue_user_card(_app(), _op(), account_no)
    emit({"uid": uid, "account_no": account_no}, f"user card {uid} issued for {account_no}")


@card_group.command("read")
def card_read():
    """Read the card in the reader and record any meter return data on it."""
    from dbmis_core.services import cards

    rep = cards.read_card(_app(), _op())
    img = rep.image
    data = {
        "uid": img.uid, "type": img.header.card_type.name.lower(), "registered": rep.registered,
        "status": rep.status, "account_no": img.header.account_no, "meter_no": img.header.meter_no,
        "psc_tries_left": img.tries_left,
        "slots": [{"slot": s.name, "sequence": s.record.sequence if s.record else None,
                   "credit": s.record.credit if s.record else None, "problem": s.problem}
                  for s in img.slots],
        "vend": None if img.vend is None else {"sequence": img.vend.sequence,
                                                "credit": img.vend.credit,
                                                "issued_at": img.vend.issued_at},
        "loaded_into_meter": not img.unloaded,
        "return": None if img.returned is None else {
            "last_sequence": img.returned.last_sequence, "remaining": img.returned.remaining,
            "cumulative_purchased": img.returned.cumulative_purchased,
            "cumulative_consumed": img.returned.cumulative_consumed,
            "status": img.returned.status, "written_at": img.returned.written_at,
            "history": list(img.returned.history)},
        "return_problem": img.return_problem, "database_sequence": rep.db_last_sequence,
        "warnings": list(rep.warnings),
    }
    emit(data)


def _lines(value, indent: int = 0):
    """Nested dicts and lists as indented text."""
    pad = "  " * indent
    items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    for key, v in items:
        head = f"{pad}{key}:" if key is not None else f"{pad}-"
        if isinstance(v, (dict, list)) and v:
            yield head
            yield from _lines(v, indent + 1)
        else:
            yield f"{head} {_scalar(v)}"


def _scalar(v) -> str:
    if v is None or v == []:
        return "-"
    if hasattr(v, "isoformat"):
        return v.isoformat(sep=" ") if hasattr(v, "hour") else v.isoformat()
    return str(v)


@card_group.command("show")
def card_show():
    """Read any card in the reader and show everything on it (changes nothing)."""
    from dbmis_core.services import cardtools

    data = cardtools.description_dict(cardtools.describe_any_card(_app(), _op()))
    emit(data, "\n".join(_lines(data)))


def _service_writer(name: str, card_type: str, doc: str, *options, single: bool = False):
    """One ``card write-...`` command per service card type, each with its own options."""

    def command(meter, **params):
        from dbmis_core.services import cardtools

        given = {k: v for k, v in params.items() if v is not None}
        w = cardtools.write_service_card(_app(), _op(), card_type, meter, **given)
        target = "any meter" if w.targets == "any" else f"meter {w.targets[0]}"
        shown = ", ".join(f"{k}={v}" for k, v in w.parameters.items()) or "none"
        emit({"uid": w.uid, "card_type": w.card_type.name.lower(), "targets": w.targets,
              "parameters": w.parameters, "written_at": w.written_at},
             f"{w.card_type.name.lower().replace('_', '-')} card {w.uid} written for {target}; "
             f"parameters: {shown}")

    command.__doc__ = doc
    meter = click.option("--meter", required=single, metavar="METER_NO",
                         help="The meter it is for." if single else
                         "Only this meter (default: any meter of the utility).")
    for option in reversed((meter, *options)):
        command = option(command)
    return card_group.command(name)(command)


_service_writer("write-test", "test", "Write a test card: a tiny test credit, a limited number of uses.",
                click.option("--credit", help="Test credit in kWh per use (default 1.00)."),
                click.option("--uses", help="How many insertions in all (1-8, default 3)."))
_service_writer("write-check", "check", "Write a check card: the meter copies its data onto it.",
                single=True)
_service_writer("write-set", "set", "Write a set card: meter parameters, applied once per version.",
                click.option("--alarm1", help="Alarm level 1 (credit left)."),
                click.option("--alarm2", help="Alarm level 2, the lower one."),
                click.option("--hoarding-limit", help="Refuse vends above this much credit."),
                click.option("--overdraft-limit", help="Credit may go this far below zero."),
                click.option("--power-limit", "power_limit_w", help="Power limit in watts."),
                click.option("--price", help="Price per kWh (money meters)."))
_service_writer("write-clear", "clear", "Write a clear card: the meter returns its data, then resets.",
                single=True)
_service_writer("write-preset", "preset", "Write a preset card: credit for new meters, repaid by "
                "their first purchase.", click.option("--credit", required=True, help="Preset credit."))
_service_writer("write-reading", "meter_reading", "Write a meter-reading card for a route.",
                click.option("--route", help="Route code (up to 32 characters)."))
_service_writer("write-management", "management", "Write a management card: suspend or resume "
                "supply of one meter.",
                click.option("--suspend", "action", flag_value="suspend", help="Suspend supply."),
                click.option("--resume", "action", flag_value="resume", help="Resume supply."),
                single=True)


@card_group.command("import")
def card_import():
    """Bring the meter data on a check, clear, meter-reading or set card into the history."""
    from dbmis_core.services import cardtools

    r = cardtools.import_service_card_data(_app(), _op())
    data = {"uid": r.uid, "card_type": r.card_type.name.lower(),
            "imported": [{"meter_no": m, "account_no": a, "written_at": t} for m, a, t in r.imported],
            "already_imported": [{"meter_no": m, "written_at": t} for m, t in r.already],
            "skipped": [{"meter_no": m, "reason": why} for m, why in r.skipped],
            "parameter_versions": [{"meter_no": m, "version": v} for m, v in r.parameter_versions],
            "notes": list(r.notes)}
    lines = [f"imported: meter {m} (account {a}), data of {t:%Y-%m-%d}" for m, a, t in r.imported]
    lines += [f"already imported: meter {m}, data of {t:%Y-%m-%d}" for m, t in r.already]
    lines += [f"skipped: meter {m}: {why}" for m, why in r.skipped]
    lines += [f"parameter version {v} on meter {m}" for m, v in r.parameter_versions]
    emit(data, "\n".join(lines + list(r.notes)) or "nothing to import")


@card_group.command("log")
@click.option("--limit", default=50, show_default=True, help="How many cards, newest first.")
@click.option("--type", "card_type", help="Only cards of this type (test, check, set, ...).")
def card_log(limit, card_type):
    """The service-card log: who wrote which service card, when, for which meters."""
    from dbmis_core.services import cardtools

    rows = cardtools.service_card_log(_app(), _op(), limit, card_type)
    data = [{"uid": e.uid, "card_type": e.card_type.name.lower(), "operator": e.operator,
             "station": e.station, "written_at": e.written_at, "targets": e.targets,
             "parameters": e.parameters, "imported_at": e.imported_at} for e in rows]
    emit(data, "\n".join(
        f"{d['written_at']:%Y-%m-%d %H:%M} {d['card_type']:<13} {d['uid']} {d['operator']:<10} "
        f"{'any meter' if d['targets'] == 'any' else ','.join(d['targets']):<14} "
        + " ".join(f"{k}={v}" for k, v in d["parameters"].items()) for d in data)
        or "no service cards written")


# -- sales -------------------------------------------------------------------------------------
@click.command("quote")
@click.argument("account_no")
@click.argument("amount")
def quote_cmd(account_no, amount):
    """Show the energy an amount buys, without selling."""
    from dbmis_core.services import vending

    q = vending.quote(_app(), _op(), account_no, amount)
    emit({"tariff": q.tariff, "amount": q.amount, "energy": q.energy, "unit_price": q.unit_price},
         f"{q.amount} buys {q.energy} kWh at {q.unit_price}/kWh ({q.tariff})")


@click.command("vend")
@click.argument("account_no")
@click.argument("amount")
def vend_cmd(account_no, amount):
    """Sell AMOUNT of electricity to ACCOUNT_NO onto the card in the reader."""
    from dbmis_core.services import vending

    r = vending.vend(_app(), _op(), account_no, amount)
    emit({"vend_id": r.vend_id, "account_no": r.account_no, "meter_no": r.meter_no,
          "sequence": r.sequence, "amount": r.amount, "energy": r.energy, "credit": r.credit,
          "state": r.state.value, "receipt_no": r.receipt_no,
          "consumption_recorded": r.consumption_recorded}, r.receipt_text)


@click.command("sales")
@click.argument("account_no")
def sales_cmd(account_no):
    """List a customer's sales."""
    from dbmis_core.services import vending

    rows = vending.sales_of(_app(), _op(), account_no)
    data = [{"id": v.id, "sequence": v.sequence, "amount": v.amount, "energy": v.energy,
             "state": v.state, "receipt_no": v.receipt_no, "operator": v.operator,
             "created_at": v.created_at} for v in rows]
    emit(data, "\n".join(f"#{d['sequence']:>3} {d['amount']:>9} {d['energy']:>9} kWh "
                         f"{d['state']:<9} {d['receipt_no'] or ''}" for d in data) or "no sales")


@click.command("reconcile")
def reconcile_cmd():
    """Settle unfinished sales of the meter whose card is in the reader."""
    from dbmis_core.services import vending

    done = vending.reconcile_card_in_reader(_app(), _op())
    emit([{"vend_id": i, "state": s} for i, s in done],
         "\n".join(f"sale {i}: {s}" for i, s in done) or "nothing to settle")


@click.command("plugins")
def plugins_cmd():
    """List installed plugins, their distribution and state."""
    app = _app()
    pm = app.pm
    data = {"plugins": [{"name": i.name, "distribution": i.distribution, "status": i.status,
                         "reason": i.reason} for i in pm.infos.values()],
            "tariffs": sorted(pm.tariffs()), "card_formats": sorted(pm.card_formats()),
            "drivers": {n: d.unavailable or "available" for n, d in pm.drivers().items()},
            "reports": sorted(pm.reports()), "qt_pages": [p.name for p in pm.qt_pages()],
            "commands": sorted(pm.cli_commands())}
    lines = [f"{i['name']:<14} {i['status']:<12} {i['distribution']:<10} {i['reason'] or ''}"
             for i in data["plugins"]]
    lines += [f"tariffs: {', '.join(data['tariffs'])}", f"card formats: {', '.join(data['card_formats'])}",
              "drivers: " + ", ".join(f"{k} ({v})" for k, v in data["drivers"].items())]
    emit(data, "\n".join(lines))
