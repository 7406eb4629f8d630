"""``dbmis receipt ...`` and ``dbmis day ...``: reprints, PDFs, the receipt register, day closing."""

from __future__ import annotations

from pathlib import Path

import click

from dbmis_core.clikit import app_and_operator, emit
from dbmis_core.errors import BusinessRuleError, ValidationError


def _write(path: str, data: bytes) -> dict:
    p = Path(path)
    if p.is_dir():
        raise ValidationError(f"{p} is a folder; give a file name")
    try:
        p.write_bytes(data)
    except OSError as exc:
        raise ValidationError(f"cannot write {p}: {exc.strerror}") from None
    return {"file": str(p), "bytes": len(data)}


@click.group("receipt")
def receipt_group():
    """Reprint receipts (marked COPY), receipt and invoice PDFs, the receipt register."""


@receipt_group.command("show")
@click.argument("receipt_no")
@click.option("--copy", is_flag=True, help="Mark it as a reprint (COPY) for the customer.")
def show(receipt_no, copy):
    """Show the receipt RECEIPT_NO of a completed sale or a cash entry (no new number is used)."""
    from dbmis_core.services import receipts

    app, op = app_and_operator()
    text = receipts.receipt_text(app, op, receipt_no, copy=copy)
    emit({"receipt_no": receipt_no.strip(), "copy": copy, "text": text}, text.rstrip("\n"))


@receipt_group.command("pdf")
@click.argument("receipt_no")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--copy", is_flag=True, help="Mark it as a reprint (COPY).")
def pdf(receipt_no, file, copy):
    """Save the receipt RECEIPT_NO as a PDF (80 mm roll) in FILE."""
    from dbmis_core.services import receipts

    app, op = app_and_operator()
    done = _write(file, receipts.receipt_pdf(app, op, receipt_no, copy=copy))
    emit(done, f"receipt {receipt_no.strip()} saved in {done['file']}")


@receipt_group.command("invoice")
@click.argument("receipt_no")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--copy", is_flag=True, help="Mark it as a reprint (COPY).")
def invoice(receipt_no, file, copy):
    """Save an A4 invoice of the sale RECEIPT_NO as a PDF in FILE."""
    from dbmis_core.services import receipts

    app, op = app_and_operator()
    done = _write(file, receipts.invoice_pdf(app, op, receipt_no, copy=copy))
    emit(done, f"invoice {receipt_no.strip()} saved in {done['file']}")


@receipt_group.command("register")
@click.option("--station", help="Station code (default: this station).")
@click.option("--from", "first", type=int, help="First number to list.")
@click.option("--to", "last", type=int, help="Last number to list.")
@click.option("--check", is_flag=True,
              help="Only check: exit status 1 if a number is missing or used twice.")
def register(station, first, last, check):
    """Every receipt number of the station and what it is (sale, void sale, cash entry)."""
    from dbmis_core.services import receipts

    app, op = app_and_operator()
    reg = receipts.receipt_register(app, op, station, first=first, last=last)
    data = {"station": reg.station, "next_number": reg.next_number, "ok": reg.ok,
            "problems": list(reg.problems)}
    if check:
        count = reg.next_number - 1
        emit(data, "\n".join(reg.problems) if reg.problems else
             f"receipt register of {reg.station} is complete: {count} numbers, each used once")
    else:
        data["lines"] = [{"number": r.number, "receipt_no": r.receipt_no, "what": r.what,
                          "source": r.source, "id": r.id, "amount": r.amount,
                          "operator": r.operator, "at": r.at, "closing_id": r.closing_id}
                         for r in reg.lines]
        rows = [f"{r.receipt_no}  {r.what:<22} {'' if r.amount is None else r.amount:>10}  "
                f"{r.operator or ''}" for r in reg.lines]
        emit(data, "\n".join(rows + [f"-- {len(reg.problems)} problem(s)"] + list(reg.problems)))
    if reg.problems:
        raise BusinessRuleError(f"receipt register of {reg.station} has {len(reg.problems)} "
                                "problem(s)")


def _closing(row) -> dict:
    return {"id": row.id, "operator": row.operator, "station": row.station,
            "business_day": row.business_day, "sales_count": row.sales_count,
            "expected": row.expected, "counted": row.counted, "discrepancy": row.discrepancy,
            "note": row.note, "closed_by": row.closed_by, "closed_at": row.closed_at,
            "summary": row.summary}


def summary_text(s: dict) -> str:
    lines = [f"Till of {s['operator']} at {s['station']}",
             f"  sales           {s['sales']['count']:>5}  {s['sales']['total']:>12}"]
    for kind, v in s["cash"].items():
        lines.append(f"  {kind:<15} {v['count']:>5}  {v['total']:>12}")
    lines.append(f"  expected cash          {s['expected']:>12}")
    if s["first_receipt"]:
        lines.append(f"  receipts {s['first_receipt']} .. {s['last_receipt']}")
    return "\n".join(lines)


@click.group("day")
def day_group():
    """Today's till: summary, closing with counted cash, list of closings."""


@day_group.command("summary")
@click.option("--operator", help="Whose till (default: yours; another's needs close_any_day).")
def day_summary(operator):
    """What closing the till now would cover: sales, fees, refunds, expected cash."""
    from dbmis_core.services import dayclose

    app, op = app_and_operator()
    till = dayclose.summary(app, op, operator)
    data = dict(till.summary, unfinished=list(till.unfinished))
    text = summary_text(till.summary)
    if till.unfinished:
        text += (f"\n  unfinished sales {', '.join(till.unfinished)}: reconcile them before "
                 "closing")
    emit(data, text)


@day_group.command("close")
@click.option("--counted", required=True, help="Cash counted in the drawer.")
@click.option("--note", default="", help="Remark kept with the closing (e.g. why it is short).")
@click.option("--operator", help="Whose till (default: yours; another's needs close_any_day).")
def day_close(counted, note, operator):
    """Close the till: record expected and counted cash and the discrepancy."""
    from dbmis_core.services import dayclose

    app, op = app_and_operator()
    row = dayclose.close(app, op, counted, note=note, operator=operator)
    d = _closing(row)
    emit(d, f"day closing {row.id} for {row.operator} on {row.business_day}: expected "
            f"{row.expected}, counted {row.counted}, discrepancy {row.discrepancy}")


@day_group.command("list")
@click.option("--operator", help="Only this operator's closings.")
@click.option("--discrepancies", is_flag=True, help="Only closings that did not balance.")
def day_list(operator, discrepancies):
    """Day closings, newest first."""
    from dbmis_core.services import dayclose

    app, op = app_and_operator()
    rows = dayclose.closings(app, op, operator=operator, discrepancies_only=discrepancies)
    data = [_closing(r) for r in rows]
    emit(data, "\n".join(f"{r.id:>4} {r.business_day} {r.operator:<12} expected {r.expected:>10} "
                         f"counted {r.counted:>10} discrepancy {r.discrepancy:>9}  {r.note}"
                         for r in rows) or "no day closings")
