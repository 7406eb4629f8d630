"""``dbmis audit list`` (the viewer, with filters) and ``dbmis audit verify`` (exit code 1 when any
record was altered, removed or reordered); docs/user-guide/audit.md."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, time, timedelta

import click

from dbmis_core.clikit import app_and_operator, emit, to_json
from dbmis_core.errors import ValidationError


def _day(value: str | None, end: bool = False) -> datetime | None:
    """YYYY-MM-DD (a whole day in the station's time zone) or an ISO time."""
    if not value:
        return None
    try:
        if len(value) == 10:
            from dbmis_core.services.dayclose import station_timezone

            app, _ = app_and_operator(need_operator=False)
            d = datetime.strptime(value, "%Y-%m-%d").date() + timedelta(days=1 if end else 0)
            return datetime.combine(d, time(0), station_timezone(app)).astimezone(UTC)
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"not a date (YYYY-MM-DD) or time: {value!r}") from None
    return at if at.tzinfo else at.astimezone()


def entry_line(e) -> str:
    details = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
    if len(details) > 100:
        details = details[:97] + "..."
    return (f"{e.at.astimezone():%Y-%m-%d %H:%M:%S}  {e.station}#{e.seq:<6} {e.operator:<12} "
            f"{e.kind:<22} {e.subject:<28} {details}")


@click.group("audit")
def audit_group():
    """The audit log: who changed money, cards, customers, operators and settings."""


@audit_group.command("list")
@click.option("--operator", help="only this operator's records")
@click.option("--from", "since", metavar="DATE", help="from this day (YYYY-MM-DD) or time on")
@click.option("--to", "until", metavar="DATE", help="up to and including this day (or before a time)")
@click.option("--kind", help="a kind (sale, cash, customer.change...) or its prefix (customer)")
@click.option("--subject", help="text in the subject (an account, meter, card, operator...)")
@click.option("--limit", type=int, default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def list_(operator, since, until, kind, subject, limit, as_json):
    """Audit records, newest first."""
    from dbmis_core.services import audit

    app, op = app_and_operator()
    rows = audit.search(app, op, operator=operator, since=_day(since),
                        until=_day(until, end=True), kind=kind, subject=subject, limit=limit)
    data = [e.as_dict() for e in rows]
    if as_json:
        click.echo(to_json(data))
        return
    emit(data, "\n".join(entry_line(e) for e in rows) or "no audit records match")


@audit_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def verify(as_json):
    """Recompute every station's hash chain; exit code 1 if anything was altered, removed or
    reordered."""
    from dbmis_core.services import audit

    app, op = app_and_operator()
    res = audit.verify(app, op)
    data = {"ok": res.ok,
            "chains": [{"station": c.station, "records": c.records, "head_seq": c.head_seq,
                        "head_hash": c.head_hash} for c in res.chains],
            "findings": [{"station": f.station, "seq": f.seq, "problem": f.problem,
                          "detail": f.detail} for f in res.findings]}
    lines = [f"station {c.station}: {c.records} records, head {c.head_seq} "
             f"{c.head_hash[:16] or '-'}" for c in res.chains]
    lines += [f"{f.problem.upper():<9} station {f.station} record {f.seq}: {f.detail}"
              for f in res.findings]
    lines.append("audit log intact" if res.ok else
                 f"audit log NOT intact: {len(res.findings)} problem(s)")
    if as_json:
        click.echo(to_json(data))
    else:
        emit(data, "\n".join(lines))
    if not res.ok:
        sys.exit(1)
