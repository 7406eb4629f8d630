"""``dbmis consumption compute|show|chart|rank`` and ``dbmis workorder create|assign|outcome|list|
labels``. Work orders are their own group: ``dbmis inspection`` holds the counter notices."""

from __future__ import annotations

from pathlib import Path

import click

from dbmis_core.clikit import app_and_operator, emit


def _finding(f) -> dict:
    return {"check": f.check, "title": f.title, "kind": f.kind, "score": f.score,
            "month": f.month, "reason": f.reason}


def _ranked(r) -> dict:
    return {"account_no": r.account_no, "name": r.name, "district": r.district,
            "score": r.score, "period": r.period, "findings": [_finding(f) for f in r.findings]}


@click.group("consumption")
def consumption_group():
    """Monthly consumption, rationality checks and the abnormal-change ranking."""


@consumption_group.command("compute")
@click.argument("account_no", required=False)
def compute(account_no):
    """(Re)compute monthly consumption from the meter returns (all customers, or ACCOUNT_NO)."""
    from dbmis_core.services import consumption

    app, op = app_and_operator()
    r = consumption.compute(app, op, account_no)
    emit({"customers": r.customers, "rows": r.rows, "seconds": round(r.seconds, 3)},
         f"{r.customers} customer(s), {r.rows} monthly rows in {r.seconds:.2f} s")


@consumption_group.command("show")
@click.argument("account_no")
@click.option("--until", help="Judge as of this month (YYYY-MM); default the newest complete one.")
def show(account_no, until):
    """ACCOUNT_NO's months and what the checks find."""
    from dbmis_core.services import consumption

    app, op = app_and_operator()
    rows = consumption.monthly(app, op, account_no)
    found = consumption.analyse_customer(app, op, account_no, until)
    data = {"account_no": account_no, "score": found.score,
            "months": [{"month": r.label, "meter_no": r.meter_no, "kwh": r.kwh,
                        "purchased": r.purchased, "returns": r.returns, "quality": r.quality,
                        "source": r.source, "flags": r.flags, "note": r.note} for r in rows],
            "findings": [_finding(f) for f in found.findings]}
    lines = [f"{'month':8} {'kWh':>10} {'bought':>10} {'returns':>7}  quality"]
    for r in rows:
        kwh = "-" if r.kwh is None else f"{r.kwh}"
        lines.append(f"{r.label:8} {kwh:>10} {r.purchased!s:>10} {r.returns:>7}  {r.quality}"
                     + (f"  ! {r.note}" if r.note else ""))
    lines.append(f"suspicion score {found.score}")
    lines += [f"- [{f.check}] {f.reason}" for f in found.findings] or ["no findings"]
    emit(data, "\n".join(lines))


@consumption_group.command("chart")
@click.argument("account_no", required=False)
@click.option("--png", "png", type=click.Path(dir_okay=False), help="Write a PNG here.")
@click.option("--svg", "svg", type=click.Path(dir_okay=False), help="Write an SVG here.")
@click.option("--per", type=click.Choice(["customer", "district", "line"]), default="customer",
              help="A customer's trend (ACCOUNT_NO), or totals per district or line.")
@click.option("--region", help="Only districts under this region, line or district code.")
def chart(account_no, png, svg, per, region):
    """Write a consumption chart as PNG and/or SVG."""
    from dbmis_core.services import charts

    if not (png or svg):
        raise click.UsageError("give --png FILE and/or --svg FILE")
    if per == "customer" and not account_no:
        raise click.UsageError("a customer chart needs ACCOUNT_NO")
    app, op = app_and_operator()
    if per == "customer":
        fig = charts.trend_figure(charts.customer_trend(app, op, account_no))
    else:
        fig = charts.area_figure(charts.area_totals(app, op, per, region))
    written = []
    for fmt, path in (("png", png), ("svg", svg)):
        if path:
            data = charts.to_bytes(fig, fmt)
            Path(path).write_bytes(data)
            written.append({"format": fmt, "file": str(path), "bytes": len(data)})
    emit(written, "\n".join(f"{w['file']}: {w['bytes']} bytes {w['format']}" for w in written))


@consumption_group.command("rank")
@click.option("--region", help="Region, line or district code.")
@click.option("--top", type=int, default=20, show_default=True)
@click.option("--until", help="Judge as of this month (YYYY-MM).")
def rank(region, top, until):
    """Customers by suspicion score with the reasons, for inspection."""
    from dbmis_core.services import consumption

    app, op = app_and_operator()
    ranked = consumption.rank(app, op, region=region, top=top, until=until)
    lines = []
    for n, r in enumerate(ranked, 1):
        lines.append(f"{n:>3}. {r.account_no} {r.name} ({r.district or '-'}) score {r.score} "
                     f"from {r.period or '-'}")
        lines += [f"       - {f.reason}" for f in r.findings]
    emit([_ranked(r) for r in ranked], "\n".join(lines) or "nothing to inspect")


def _order(o) -> dict:
    return {"id": o.id, "account_no": o.account_no, "name": o.customer_name,
            "meter_no": o.meter_no, "origin": o.origin, "notice_id": o.notice_id,
            "period": o.period, "score": o.score, "reasons": list(o.reasons), "status": o.status,
            "assigned_to": o.assigned_to, "outcome": o.outcome, "notes": o.notes,
            "created_by": o.created_by, "created_at": o.created_at, "closed_by": o.closed_by,
            "closed_at": o.closed_at}


def _line(o) -> str:
    return (f"#{o.id} {o.account_no} {o.customer_name} [{o.status}] {o.origin}"
            f"{' score ' + str(o.score) if o.score is not None else ''}"
            f"{' -> ' + o.assigned_to if o.assigned_to else ''}"
            f"{' outcome ' + o.outcome if o.outcome else ''}")


@click.group("workorder")
def workorder_group():
    """Inspection work orders: create, assign, record the outcome, export labels."""


@workorder_group.command("create")
@click.argument("account_no", required=False)
@click.option("--from-rank", "from_rank", is_flag=True,
              help="Take the score, month and reasons from the ranked list.")
@click.option("--top", type=int, default=0,
              help="With --from-rank and no ACCOUNT_NO: orders for the top N of the list.")
@click.option("--region", help="With --from-rank: rank within this region, line or district.")
@click.option("--notice", "notice_id", type=int, help="Create from this counter notice.")
@click.option("--reason", "reasons", multiple=True, help="Why (for a manual order).")
@click.option("--notes", default="")
def create(account_no, from_rank, top, region, notice_id, reasons, notes):
    """Create work orders from the ranked list, a counter notice, or by hand."""
    from dbmis_core.services import consumption, workorders

    app, op = app_and_operator()
    if notice_id is not None:
        made = [workorders.create_from_notice(app, op, notice_id)]
    elif from_rank:
        ranked = consumption.rank(app, op, region=region, top=None)
        if account_no:
            ranked = [r for r in ranked if r.account_no == account_no]
            if not ranked:
                raise click.ClickException(f"{account_no} is not on the ranked list")
        elif top > 0:
            ranked = ranked[:top]
        else:
            raise click.UsageError("--from-rank needs ACCOUNT_NO or --top N")
        made = [workorders.create_from_ranking(app, op, r) for r in ranked]
    else:
        if not account_no:
            raise click.UsageError("give ACCOUNT_NO, --from-rank or --notice")
        made = [workorders.create(app, op, account_no, reasons=reasons, notes=notes)]
    emit([_order(o) for o in made], "\n".join(_line(o) for o in made))


@workorder_group.command("assign")
@click.argument("order_id", type=int)
@click.argument("inspector")
def assign(order_id, inspector):
    """Give ORDER_ID to INSPECTOR (an operator login)."""
    from dbmis_core.services import workorders

    app, op = app_and_operator()
    o = workorders.assign(app, op, order_id, inspector)
    emit(_order(o), _line(o))


@workorder_group.command("outcome")
@click.argument("order_id", type=int)
@click.argument("outcome", type=click.Choice(["theft", "fault", "no_problem", "no-problem"]))
@click.option("--notes", default="")
def outcome(order_id, outcome, notes):
    """Close ORDER_ID with what the inspection found."""
    from dbmis_core.services import workorders

    app, op = app_and_operator()
    o = workorders.record_outcome(app, op, order_id, outcome, notes)
    emit(_order(o), _line(o))


@workorder_group.command("list")
@click.option("--status", type=click.Choice(["open", "assigned", "done"]))
@click.option("--inspector", help="Only orders assigned to this login.")
def list_(status, inspector):
    """Work orders, newest first."""
    from dbmis_core.services import workorders

    app, op = app_and_operator()
    orders = workorders.list_orders(app, op, status=status, assigned_to=inspector)
    emit([_order(o) for o in orders], "\n".join(_line(o) for o in orders) or "no work orders")


@workorder_group.command("labels")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), help="Write CSV here.")
def labels(csv_file):
    """Inspected cases as (customer, month, score, outcome) for measuring the detector."""
    from dbmis_core.services import workorders

    app, op = app_and_operator()
    rows = workorders.labels(app, op)
    if csv_file:
        Path(csv_file).write_text(workorders.labels_csv(app, op), encoding="utf-8")
    data = [{"work_order": lb.work_order, "account_no": lb.account_no, "period": lb.period,
             "score": lb.score, "outcome": lb.outcome, "origin": lb.origin,
             "closed_at": lb.closed_at} for lb in rows]
    emit(data, "\n".join(f"{d['account_no']} {d['period'] or '-'} score {d['score']} "
                         f"{d['outcome']}" for d in data) or "no labels yet")
