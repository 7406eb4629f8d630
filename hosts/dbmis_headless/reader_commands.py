"""``dbmis reader ...``: the card reader's state and its insert/remove events."""

from __future__ import annotations

import json
import queue
import time

import click

from dbmis_core.clikit import app_and_operator, emit


@click.group("reader")
def reader_group():
    """Card reader state and events."""


@reader_group.command("list")
def reader_list():
    """List the readers the configured driver can see."""
    app, _ = app_and_operator(False)
    name = app.config.data["card"]["driver"]
    spec = app.pm.get_driver(name)
    found = spec.enumerate(app.config.driver_settings(name))
    emit({"driver": name, "readers": found}, "\n".join(found) or "no reader found")


@reader_group.command("status")
def reader_status():
    """Show whether a reader and a card are there."""
    app, _ = app_and_operator(False)
    dm = app.devices.start()
    deadline = time.monotonic() + 5  # the first look at the reader happens on its worker thread
    while dm.detail == "starting" and time.monotonic() < deadline:
        time.sleep(0.02)
    emit({"driver": app.config.data["card"]["driver"], "state": dm.state.value,
          "detail": dm.detail}, f"{dm.state.value}{f' ({dm.detail})' if dm.detail else ''}")


@reader_group.command("watch")
@click.option("--seconds", type=float, default=30.0, show_default=True,
              help="Stop watching after this long.")
def reader_watch(seconds):
    """Print card inserted/removed events and state changes as they happen (JSON lines with --json)."""
    app, _ = app_and_operator(False)
    as_json = click.get_current_context().find_root().params.get("as_json")
    events: queue.Queue = queue.Queue()  # listeners run on the device thread; print from this one
    dm = app.devices
    dm.subscribe(events.put)
    dm.start()
    deadline = time.monotonic() + max(0.0, seconds)
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = events.get(timeout=left)
            except queue.Empty:
                break
            if as_json:
                click.echo(json.dumps({"event": event.kind, "state": event.state.value,
                                       "detail": event.detail}))
            else:
                click.echo(f"{time.strftime('%H:%M:%S')} {event.kind}: {event.state.value}"
                           f"{f' ({event.detail})' if event.detail else ''}")
    finally:
        dm.unsubscribe(events.put)
