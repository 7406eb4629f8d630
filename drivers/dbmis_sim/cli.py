"""``dbmis sim ...``: handle simulated cards and meters from the command line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import attrs
import click

from dbmis_core.clikit import app_and_operator, emit
from dbmis_core.errors import NotFound, ValidationError
from dbmis_core.money import to_decimal

from .meter import MeterSimulator
from .reader import SimReader, reader_folder
from .sle4442 import Faults


def _reader(app) -> SimReader:
    return SimReader(reader_folder(app.config.driver_settings("sim")))


def meter_path(app, meter_no: str) -> Path:
    return reader_folder(app.config.driver_settings("sim")) / "meters" / f"{meter_no}.json"


def load_or_provision(app, meter_no: str) -> MeterSimulator:
    """The simulated meter; provisioned with its keys on first use, as at installation."""
    path = meter_path(app, meter_no)
    if path.exists():
        return MeterSimulator.load(path)
    return MeterSimulator.provision(path, meter_no, app.keys.meter_key(meter_no),
                                    service_key=app.keys.service_key())


@click.group("sim")
def sim_group():
    """Simulated cards and meters (the 'sim' driver)."""


@sim_group.command("new-card")
def new_card():
    """Put a blank card from stock into the simulated reader."""
    app, _ = app_and_operator(False)
    uid = _reader(app).new_card()
    emit({"uid": uid}, f"blank card {uid} is in the reader")


@sim_group.command("insert")
@click.argument("uid")
def insert(uid):
    """Put card UID (from the simulated stock) into the reader."""
    app, _ = app_and_operator(False)
    emit({"uid": _reader(app).insert(uid)}, f"card {uid} is in the reader")


@sim_group.command("eject")
def eject():
    """Take the card out of the reader."""
    app, _ = app_and_operator(False)
    r = _reader(app)
    uid = r.inserted_uid()
    r.eject()
    emit({"uid": uid}, f"card {uid} taken out" if uid else "the reader was empty")


@sim_group.command("fault")
@click.option("--pull-after-bytes", type=int, help="Pull the card after N bytes of the next write.")
@click.option("--timeout", is_flag=True, help="The next operation times out.")
def fault(pull_after_bytes, timeout):
    """Inject a fault into the next card connection."""
    app, _ = app_and_operator(False)
    _reader(app).inject(Faults(pull_after_bytes=pull_after_bytes, timeout=timeout))
    emit({"pull_after_bytes": pull_after_bytes, "timeout": timeout}, "fault armed")


@sim_group.command("meter-insert")
@click.argument("meter_no")
def meter_insert(meter_no):
    """Insert the card in the reader into simulated meter METER_NO (the card stays in the reader).

    Any card: a user or replacement card, or a test, check, set, clear, preset, meter-reading or
    management card."""
    app, _ = app_and_operator(False)
    sim = load_or_provision(app, meter_no)
    with _reader(app).connect() as conn:
        res = sim.insert(conn, app.card_format)
    emit({"meter_no": meter_no, "accepted": res.accepted, "applied": res.applied,
          "message": res.message, "remaining": sim.remaining}, f"meter {meter_no}: {res.message}; "
         f"remaining {sim.remaining}")


@sim_group.command("meter-run")
@click.argument("meter_no")
@click.option("--days", type=int, required=True)
@click.option("--kwh-per-day", default="3.0", show_default=True)
def meter_run(meter_no, days, kwh_per_day):
    """Let simulated meter METER_NO consume for DAYS days."""
    if days < 0:
        raise ValidationError("days must not be negative")
    app, _ = app_and_operator(False)
    path = meter_path(app, meter_no)
    if not path.exists():
        raise NotFound(f"simulated meter {meter_no} has not seen a card yet")
    sim = MeterSimulator.load(path)
    used = sim.run(days, to_decimal(kwh_per_day, "kWh per day"))
    emit({"meter_no": meter_no, "days": days, "consumed": used, "remaining": sim.remaining,
          "date": sim.today}, f"meter {meter_no}: {used} kWh used over {days} days, "
         f"{sim.remaining} left, now {sim.today}")


@sim_group.command("meter-show")
@click.argument("meter_no")
def meter_show(meter_no):
    """Show the state of simulated meter METER_NO."""
    app, _ = app_and_operator(False)
    path = meter_path(app, meter_no)
    if not path.exists():
        raise NotFound(f"simulated meter {meter_no} has not seen a card yet")
    sim = MeterSimulator.load(path)
    st = sim.state
    emit({"meter_no": st.meter_no, "date": st.clock, "last_sequence": st.last_sequence,
          "remaining": Decimal(st.remaining), "cumulative_purchased": Decimal(st.cumulative_purchased),
          "cumulative_consumed": Decimal(st.cumulative_consumed), "relay_open": st.relay_open,
          "suspended": st.suspended, "preset_owed": Decimal(st.preset_owed),
          "test_uses": st.test_uses, "illegal_card_count": st.illegal_card_count,
          "bound_card": st.bound_uid, "parameters": attrs.asdict(sim.parameters())})
