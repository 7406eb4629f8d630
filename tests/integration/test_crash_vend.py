"""Kill the selling process (SIGKILL) at random moments; after reconciliation no credit is lost or
doubled and every sale is final."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time

from sqlalchemy import select

from dbmis_core.services import cards, vending
from dbmis_core.storage.models import StationRow, VendRow
from dbmis_sim.meter import MeterSimulator

DBMIS = shutil.which("dbmis", path=os.path.dirname(sys.executable))


def test_sigkill_during_sales(demo, admin, tmp_path, backend):
    demo.reader.new_card()
    uid = cards.issue_user_card(demo, admin, "100001")
    meter_no = "000020240001"
    sim = MeterSimulator.provision(tmp_path / "meter.json", meter_no, demo.keys.meter_key(meter_no))
    env = dict(os.environ, DBMIS_HOME=str(demo.config.home), DBMIS_DATABASE_URL=demo.config.database_url,
               DBMIS_OPERATOR="admin", DBMIS_PASSWORD="admin-pass-1")
    started = time.monotonic()  # one undisturbed sale tells how long a sale takes here
    subprocess.run([DBMIS, "vend", "100001", "10.00"], env=env, check=True, capture_output=True)
    span = time.monotonic() - started
    with demo.reader.connect() as conn:
        loaded_total = sim.insert(conn, demo.card_format).applied
    rng = random.Random(20261128)
    kills = 0
    for _ in range(16):
        proc = subprocess.Popen([DBMIS, "vend", "100001", "10.00"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5 * span, 1.05 * span))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        demo.reader.insert(uid)  # the clerk re-inserts the card; reconciliation settles the sale
        vending.reconcile_card_in_reader(demo, admin)
        with demo.reader.connect() as conn:
            loaded_total += sim.insert(conn, demo.card_format).applied
    with demo.uow() as uow:
        vends = list(uow.session.scalars(select(VendRow).order_by(VendRow.id)))
        station = uow.session.scalar(select(StationRow))
        meter_seq = vends[0].meter.last_sequence if vends else 0
    assert kills > 0
    assert all(v.state in ("completed", "failed") for v in vends)
    done = [v for v in vends if v.state == "completed"]
    assert [v.sequence for v in done] == list(range(1, len(done) + 1))
    assert meter_seq == len(done) == sim.state.last_sequence
    # every completed sale reached the meter exactly once, and nothing else did
    assert loaded_total == sum(v.credit for v in done)
    # every receipt number of the station is accounted for exactly once: by a completed sale, or
    # void on a failed one
    numbered = sorted(v.receipt_no for v in vends if v.receipt_no)
    assert numbered == [f"S01-{i:08d}" for i in range(1, station.next_receipt)]
    assert all(v.receipt_no for v in done)


VEND_STEPS = ["vend.pending", "vend.card_written", "vend.verified", "vend.receipt", "vend.completed"]


def test_sigkill_at_every_step_of_a_sale(demo, admin, tmp_path):
    """The process dies (SIGKILL) at each named step of the state machine, twice over; after the card
    is presented again every sale is final and the meter got exactly what was completed."""
    demo.reader.new_card()
    uid = cards.issue_user_card(demo, admin, "100001")
    meter_no = "000020240001"
    sim = MeterSimulator.provision(tmp_path / "meter.json", meter_no, demo.keys.meter_key(meter_no))
    env = dict(os.environ, DBMIS_HOME=str(demo.config.home), DBMIS_DATABASE_URL=demo.config.database_url,
               DBMIS_OPERATOR="admin", DBMIS_PASSWORD="admin-pass-1")
    loaded_total = 0
    outcomes = {}
    for step in VEND_STEPS * 2:
        demo.reader.insert(uid)
        proc = subprocess.run([DBMIS, "vend", "100001", "10.00"], env=dict(env, DBMIS_CRASH_AT=step),
                              capture_output=True, text=True)
        assert proc.returncode == -signal.SIGKILL, (step, proc.returncode, proc.stderr)
        demo.reader.insert(uid)
        settled = vending.reconcile_card_in_reader(demo, admin)
        outcomes.setdefault(step, []).extend(state for _id, state in settled)
        with demo.reader.connect() as conn:
            loaded_total += sim.insert(conn, demo.card_format).applied
    with demo.uow() as uow:
        vends = list(uow.session.scalars(select(VendRow).order_by(VendRow.id)))
        meter_seq = vends[0].meter.last_sequence
    assert len(vends) == len(VEND_STEPS) * 2
    assert all(v.state in ("completed", "failed") for v in vends)
    # killed before the card was written: the sale failed; once the card holds it: completed;
    # killed after COMPLETED: nothing was left to settle
    assert outcomes["vend.pending"] == ["failed", "failed"]
    for step in VEND_STEPS[1:-1]:
        assert outcomes[step] == ["completed", "completed"], step
    assert outcomes["vend.completed"] == []
    done = [v for v in vends if v.state == "completed"]
    assert [v.sequence for v in done] == list(range(1, len(done) + 1))
    assert meter_seq == len(done) == sim.state.last_sequence
    assert loaded_total == sum(v.credit for v in done)
