"""``dbmis application ...``: new-service applications from a shell. Services decide everything."""

from __future__ import annotations

from pathlib import Path

import click

from dbmis_core.clikit import app_and_operator, emit
from dbmis_core.errors import ValidationError
from dbmis_core.services import applications as A

STEPS = tuple(A.ACTIONS)


def _show(a: A.Application) -> str:
    lines = [f"Application {a.number}  [{a.state}]" + (f"  next: {a.next_action}"
                                                        if a.next_action else ""),
             f"  applicant : {a.applicant_name}, {a.address or '-'}, {a.phone or '-'} "
             f"({a.category}{', ' + str(a.requested_amps) + ' A' if a.requested_amps else ''})",
             f"  service   : district {a.district_code or '-'}, model {a.model_code or '-'}, "
             f"capacity {a.capacity_mode or '-'}, tariff {a.tariff or '(default)'}"
             + (f", batch {a.batch}" if a.batch else ""),
             f"  account   : {a.account_no or '-'}  meter {a.meter_no or '-'}  "
             f"card {a.card_uid or '-'}"]
    if a.steps:
        lines.append("  steps:")
        lines += [f"    {s.at:%Y-%m-%d %H:%M}  {s.state:<15} {s.operator:<12} {s.notes}"
                  for s in a.steps]
    return "\n".join(lines)


def _settings_options(f):
    for opt in reversed((
            click.option("--model", help="Meter model (type) code, e.g. DDSY-1P."),
            click.option("--capacity-mode", type=click.Choice(A.CAPACITY_MODES),
                         help="Capacity-limit mode."),
            click.option("--tariff", help="Tariff (default: the configured tariff)."),
            click.option("--district", help="Area code: the transformer district."),
            click.option("--batch", "batch_label", help="Batch label grouping applications."))):
        f = opt(f)
    return f


def _settings(model, capacity_mode, tariff, district, batch_label) -> A.BatchSettings:
    return A.BatchSettings(model, capacity_mode, tariff, district, batch_label)


@click.group("application")
def application_group():
    """New-service applications: received -> surveyed -> approved -> meter_assigned -> installed
    -> opened -> completed (or rejected / cancelled)."""


@application_group.command("new")
@click.argument("name")
@click.option("--address", default="")
@click.option("--phone", default="")
@click.option("--category", default="residential", show_default=True)
@click.option("--amps", help="Requested capacity in amperes.")
@_settings_options
@click.option("--notes", default="", help="Notes for the first step.")
def new_cmd(name, address, phone, category, amps, model, capacity_mode, tariff, district,
            batch_label, notes):
    """Record the application of NAME for a new connection."""
    app, op = app_and_operator()
    a = A.new_application(app, op, A.Applicant(name, address, phone, category, amps),
                          _settings(model, capacity_mode, tariff, district, batch_label), notes)
    emit(a, f"application {a.number} received for {a.applicant_name}")


@application_group.command("list")
@click.option("--state", help="Only applications in this state.")
@click.option("--search", "text", help="Part of the number or the applicant's name.")
@click.option("--batch", "batch_label", help="Only this batch.")
def list_cmd(state, text, batch_label):
    """List applications, newest first."""
    app, op = app_and_operator()
    rows = A.list_applications(app, op, state=state, text=text, batch=batch_label)
    human = "\n".join(f"{a.number:<16} {a.state:<15} {a.applicant_name:<28} "
                      f"{a.account_no or '':<8} {a.next_action or ''}" for a in rows)
    emit(rows, human or "no applications")


@application_group.command("show")
@click.argument("number")
def show_cmd(number):
    """Show an application with all its steps."""
    app, op = app_and_operator()
    a = A.get_application(app, op, number)
    emit(a, _show(a))


@application_group.command("advance")
@click.argument("number")
@click.argument("step", type=click.Choice(STEPS))
@click.option("--notes", default="")
@click.option("--meter", "meter_no", help="assign-meter: this meter (default: first free one).")
@click.option("--account", "account_no", help="open: this account number (default: next free).")
@_settings_options
def advance_cmd(number, step, notes, meter_no, account_no, model, capacity_mode, tariff, district,
                batch_label):
    """Move application NUMBER on by STEP. 'open' creates the customer and issues the user card
    onto the blank card in the reader."""
    app, op = app_and_operator()
    kw: dict = {"notes": notes}
    given = {"--meter": (meter_no, "assign-meter"), "--account": (account_no, "open")}
    for opt, (value, needs) in given.items():
        if value is not None and step != needs:
            raise ValidationError(f"{opt} belongs to the {needs} step")
    settings = _settings(model, capacity_mode, tariff, district, batch_label)
    if settings != A.BatchSettings() and step != "approve":
        raise ValidationError("service settings (--model, --tariff, ...) are given when approving")
    if step == "assign-meter":
        kw["meter_no"] = meter_no
    elif step == "open":
        kw["account_no"] = account_no
    elif step == "approve":
        kw["settings"] = settings
    a = A.advance(app, op, number, step, **kw)
    extra = {"assign-meter": f", meter {a.meter_no}",
             "open": f", account {a.account_no}, card {a.card_uid}"}.get(step, "")
    emit(a, f"application {a.number} is {a.state}{extra}")


@application_group.command("reject")
@click.argument("number")
@click.option("--reason", required=True)
def reject_cmd(number, reason):
    """The utility refuses the application."""
    app, op = app_and_operator()
    a = A.reject(app, op, number, reason)
    emit(a, f"application {a.number} rejected")


@application_group.command("cancel")
@click.argument("number")
@click.option("--reason", required=True)
def cancel_cmd(number, reason):
    """The applicant withdraws the application."""
    app, op = app_and_operator()
    a = A.cancel(app, op, number, reason)
    emit(a, f"application {a.number} cancelled")


@application_group.command("form")
@click.argument("number")
@click.option("--pdf", "pdf_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an A4 PDF to this file instead of printing text.")
def form_cmd(number, pdf_file):
    """The printable application form."""
    app, op = app_and_operator()
    if pdf_file is None:
        text = A.render_form(app, op, number)
        emit({"number": number, "text": text}, text.rstrip("\n"))
        return
    data = A.render_form(app, op, number, pdf=True)
    pdf_file.write_bytes(data)
    emit({"number": number, "pdf": str(pdf_file), "bytes": len(data)},
         f"application form {number} written to {pdf_file}")


@application_group.command("batch")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_settings_options
@click.option("--to", "advance_to", default="received", show_default=True,
              type=click.Choice([s.value for s in A.BATCH_TARGETS]),
              help="Take every application this far.")
@click.option("--notes", default="")
def batch_cmd(csv_file, model, capacity_mode, tariff, district, batch_label, advance_to, notes):
    """Applications for every applicant in CSV_FILE (columns name,address,phone,category,
    requested_amps) with the same settings; all or nothing."""
    app, op = app_and_operator()
    people = A.applicants_from_csv(csv_file.read_text(encoding="utf-8"))
    made = A.submit_batch(app, op, people, _settings(model, capacity_mode, tariff, district,
                                                     batch_label), advance_to, notes)
    emit(made, "\n".join(f"{a.number} {a.state:<15} {a.applicant_name}"
                         + (f"  meter {a.meter_no}" if a.meter_no else "") for a in made))
