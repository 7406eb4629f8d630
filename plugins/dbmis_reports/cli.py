"""``dbmis report list|run``, ``dbmis lineloss enter|import|list`` and ``dbmis find``."""

from __future__ import annotations

from pathlib import Path

import click

from dbmis_core.clikit import app_and_operator, emit

FORMATS = ("table", "csv", "xlsx", "pdf", "html")


@click.group("report")
def report_command():
    """Run reports and export them (table, CSV, XLSX, PDF, HTML)."""


@report_command.command("list")
def report_list():
    """The installed reports and the filters each takes."""
    from dbmis_core.services import reports

    app, op = app_and_operator()
    specs = reports.list_reports(app, op)
    emit([{"name": s.name, "title": s.title, "filters": list(s.filters),
           "columns": [c.name for c in s.columns]} for s in specs],
         "\n".join(f"{s.name:22} {s.title}\n{'':22} filters: {', '.join(s.filters) or '-'}"
                   for s in specs))


@report_command.command("summary")
def report_summary():
    """Build or bring up to date the sales summary the monthly reports read (the first build
    reads every sale: run it at a quiet time after upgrading)."""
    from dbmis_core.services import reports, salessummary

    app, op = app_and_operator()
    reports.list_reports(app, op)  # the view_reports permission
    r = salessummary.refresh(app)
    emit({"built": r.built, "added": r.added, "removed": r.removed,
          "seconds": round(r.seconds, 3)},
         f"{'built' if r.built else 'updated'}: {r.added} sale(s) added, {r.removed} taken out "
         f"in {r.seconds:.2f} s")


@report_command.command("run")
@click.argument("name")
@click.option("--level", type=click.Choice(["region", "line", "district"]),
              help="Level of the region hierarchy to group by.")
@click.option("--region", help="Only this region, line or district (code).")
@click.option("--from", "month_from", help="First month, YYYY-MM (default: this month).")
@click.option("--to", "month_to", help="Last month, YYYY-MM (default: the first month).")
@click.option("--day", help="One day, YYYY-MM-DD (daily sales journal).")
@click.option("--station", help="Sales station code.")
@click.option("--operator", "operator_", help="Operator login.")
@click.option("--category", help="Customer category.")
@click.option("--account", "account_no", help="Account number (customer statement).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the export here.")
def report_run(name, level, region, month_from, month_to, day, station, operator_, category,
               account_no, fmt, out):
    """Run report NAME with the filters given."""
    from dbmis_core.services import reports

    app, op = app_and_operator()
    filters = {"level": level, "region": region, "month_from": month_from,
               "month_to": month_to, "day": day, "station": station, "operator": operator_,
               "category": category, "account_no": account_no}
    result = reports.run(app, op, name, **{k: v for k, v in filters.items() if v})
    if fmt == "table":
        data = {"report": result.name, "filters": result.filters,
                "columns": [c.name for c in result.columns], "rows": result.rows,
                "totals": result.totals}
        if out:
            Path(out).write_text(reports.table_text(result) + "\n", encoding="utf-8")
        emit(data, reports.table_text(result))
        return
    payload = reports.export(result, fmt)
    if out:
        Path(out).write_bytes(payload)
        emit({"report": result.name, "format": fmt, "file": str(out), "bytes": len(payload),
              "rows": len(result.rows)},
             f"{out}: {len(payload)} bytes {fmt}, {len(result.rows)} row(s)")
    elif fmt in ("csv", "html"):
        click.echo(payload.decode("utf-8"), nl=False)
    else:
        raise click.UsageError(f"--format {fmt} needs --out FILE")


@click.group("lineloss")
def lineloss_command():
    """Master meter readings per line or transformer district, for the line-loss report."""


def _reading(r) -> dict:
    return {"code": r.code, "level": r.level, "month": r.month, "supplied": r.supplied,
            "source": r.source, "entered_by": r.entered_by, "note": r.note}


@lineloss_command.command("enter")
@click.argument("code")
@click.argument("month")
@click.argument("supplied")
@click.option("--note", default="")
def lineloss_enter(code, month, supplied, note):
    """Record the master meter reading: CODE (line/district), MONTH (YYYY-MM), SUPPLIED kWh."""
    from dbmis_core.services import lineloss

    app, op = app_and_operator()
    r = lineloss.enter(app, op, code, month, supplied, note)
    emit(_reading(r), f"{r.code} {r.month}: {r.supplied} kWh supplied")


@lineloss_command.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def lineloss_import(path):
    """Import readings from a CSV file: code,month,supplied[,note] (all or nothing)."""
    from dbmis_core.services import lineloss

    app, op = app_and_operator()
    done = lineloss.import_csv(app, op, Path(path).read_text(encoding="utf-8-sig"))
    emit([_reading(r) for r in done], f"{len(done)} reading(s) imported")


@lineloss_command.command("list")
@click.option("--from", "month_from")
@click.option("--to", "month_to")
@click.option("--code")
def lineloss_list(month_from, month_to, code):
    """Master meter readings on record."""
    from dbmis_core.services import lineloss

    app, op = app_and_operator()
    rows = lineloss.readings(app, op, month_from, month_to, code)
    emit([_reading(r) for r in rows],
         "\n".join(f"{r.month} {r.code:8} {r.supplied!s:>12} kWh  {r.source}" for r in rows)
         or "no readings")


@click.command("find")
@click.argument("text", nargs=-1, required=True)
@click.option("--kind", type=click.Choice(["customer", "meter", "card", "sale"]),
              help="Only this kind of record.")
@click.option("--limit", type=int, default=20, show_default=True)
def find_command(text, kind, limit):
    """Find customers, meters, cards and sales by account, name, address, phone, meter number,
    card UID or receipt number (partial input matches)."""
    import attrs

    from dbmis_core.services import search

    app, op = app_and_operator()
    found = search.find(app, op, " ".join(text), kind=kind, limit=limit)
    lines = []
    for c in found.customers:
        lines.append(f"customer {c.account_no} {c.name} | {c.address} | {c.phone} | "
                     f"{c.category} {c.district} [{c.matched}]")
    for m in found.meters:
        lines.append(f"meter    {m.meter_no} {m.model} {m.status} {m.account_no} {m.name}")
    for k in found.cards:
        lines.append(f"card     {k.uid} type {k.card_type} {k.status} {k.account_no} "
                     f"{k.meter_no}")
    for s in found.sales:
        lines.append(f"sale     {s.receipt_no} {s.completed_at:%Y-%m-%d %H:%M} {s.state} "
                     f"{s.account_no} {s.amount} {s.energy} kWh" if s.completed_at else
                     f"sale     {s.receipt_no} {s.state} {s.account_no} {s.amount}")
    data = {"text": found.text,
            **{k: [attrs.asdict(x) for x in getattr(found, k)]
               for k in ("customers", "meters", "cards", "sales")}}
    emit(data, "\n".join(lines) or f"nothing found for {found.text!r}")
