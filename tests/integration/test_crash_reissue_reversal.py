"""Kill ``dbmis card reissue`` and ``dbmis sale reverse`` (SIGKILL) at every step and at random
moments; after the card is re-inserted and reconciled, no credit is lost or doubled, every sale,
reissue and reversal is final, and refunds and fees are taken exactly once."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal

from sqlalchemy import select

from dbmis_core.crashpoints import ENV
from dbmis_core.errors import BlankCardError
from dbmis_core.services import cards, reissue, vending
from dbmis_core.storage.models import (
    CardRow,
    CashEntryRow,
    MeterRow,
    ReissueRow,
    ReversalRow,
    VendRow,
)
from dbmis_sim.meter import MeterSimulator

DBMIS = shutil.which("dbmis", path=os.path.dirname(sys.executable))
ACCOUNT, METER = "100001", "000020240001"
REVERSAL_POINTS = ["reversal.pending", "reversal.card_written", "reversal.verified",
                   "reversal.completed"]
REISSUE_POINTS = ["reissue.pending", "reissue.personalised", "reissue.card_written",
                  "reissue.verified", "reissue.completed"]
KILLED = -signal.SIGKILL


class Counter:
    """The clerk's side of the story: the active card, and all credit the meter took."""

    def __init__(self, app, op, sim, uid):
        self.app, self.op, self.sim, self.uid = app, op, sim, uid
        self.loaded = Decimal(0)

    def load(self):
        self.app.reader.insert(self.uid)
        with self.app.reader.connect() as conn:
            self.loaded += self.sim.insert(conn, self.app.card_format).applied

    def settle(self, uid=None):
        self.app.reader.insert(uid or self.uid)
        vending.reconcile_card_in_reader(self.app, self.op)

    def sell(self) -> int:
        self.app.reader.insert(self.uid)
        return vending.vend(self.app, self.op, ACCOUNT, "10.00").vend_id


def _reissue_row(app, new_uid):
    with app.uow() as uow:
        return uow.session.scalar(select(ReissueRow).where(ReissueRow.new_uid == new_uid)
                                  .order_by(ReissueRow.id.desc()).limit(1))


def _reversal_state(app, vend_id):
    with app.uow() as uow:
        row = uow.session.scalar(select(ReversalRow).where(ReversalRow.vend_id == vend_id))
        return row.state if row else None


def test_sigkill_during_reissue_and_reversal(demo, admin, tmp_path, backend):
    demo.config.data["card"]["reissue_fee"] = "1.00"
    demo.reader.new_card()
    first = cards.issue_user_card(demo, admin, ACCOUNT)
    sim = MeterSimulator.provision(tmp_path / "meter.json", METER, demo.keys.meter_key(METER))
    c = Counter(demo, admin, sim, first)
    env = dict(os.environ, DBMIS_HOME=str(demo.config.home),
               DBMIS_DATABASE_URL=demo.config.database_url, DBMIS_OPERATOR="admin",
               DBMIS_PASSWORD="admin-pass-1")
    env.pop(ENV, None)

    def run(*args, crash=None, wait=True):
        e = dict(env, **({ENV: crash} if crash else {}))
        cmd = [DBMIS, *args]
        if wait:
            return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=120)
        return subprocess.Popen(cmd, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # -- a crash at every step of a reversal --------------------------------------------------
    c.sell()
    c.load()
    for point in REVERSAL_POINTS:
        vid = c.sell()
        p = run("sale", "reverse", str(vid), "--reason", "crash test", crash=point)
        assert p.returncode == KILLED, (point, p.stderr)
        c.settle()
        assert _reversal_state(demo, vid) == ("failed" if point == "reversal.pending"
                                              else "completed"), point
        c.load()

    # -- a crash at every step of a reissue ----------------------------------------------------
    for point in REISSUE_POINTS:
        c.sell()
        c.load()
        new = demo.reader.new_card()
        p = run("card", "reissue", ACCOUNT, "--fee", "1.00", "--reason", "crash test", crash=point)
        assert p.returncode == KILLED, (point, p.stderr)
        c.settle(new)
        row = _reissue_row(demo, new)
        expected = "failed" if point in ("reissue.pending", "reissue.personalised") else "completed"
        assert row.state == expected, point
        if row.state == "failed":  # the clerk tries again with the same card
            demo.reader.insert(new)
            assert reissue.reissue_card(demo, admin, ACCOUNT).state == "completed"
        c.uid = new
        c.load()  # the meter moves to the replacement card

    # -- and at random moments ----------------------------------------------------------------
    started = time.monotonic()
    p = run("sale", "reverse", str(c.sell()), "--reason", "timing")
    assert p.returncode == 0, p.stderr
    span = time.monotonic() - started
    rng = random.Random(20261128)
    kills = 0
    for i in range(8):
        if i % 4 == 3:  # now and then a reissue instead of a reversal
            c.sell()
            c.load()
            new = demo.reader.new_card()
            proc = run("card", "reissue", ACCOUNT, "--fee", "1.00", wait=False)
        else:
            vid = c.sell()
            proc = run("sale", "reverse", str(vid), "--reason", "random kill", wait=False)
            new = None
        time.sleep(rng.uniform(0.4 * span, 1.1 * span))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if new is not None:
            try:
                c.settle(new)
            except BlankCardError:  # killed before the reissue was recorded: nothing to settle
                assert _reissue_row(demo, new) is None
            row = _reissue_row(demo, new)
            if row is None or row.state == "failed":
                demo.reader.insert(new)
                reissue.reissue_card(demo, admin, ACCOUNT)
            c.uid = new
        else:
            c.settle()
        c.load()
    assert kills > 0

    # -- the books and the meter agree ---------------------------------------------------------
    with demo.uow() as uow:
        s = uow.session
        vends = list(s.scalars(select(VendRow).order_by(VendRow.id)))
        reversals = list(s.scalars(select(ReversalRow).order_by(ReversalRow.id)))
        reissues = list(s.scalars(select(ReissueRow).order_by(ReissueRow.id)))
        refunds = list(s.scalars(select(CashEntryRow).where(CashEntryRow.kind == "refund")))
        fees = list(s.scalars(select(CashEntryRow).where(CashEntryRow.kind == "reissue_fee")))
        meter_seq = s.scalar(select(MeterRow.last_sequence).where(MeterRow.meter_no == METER))
        active = list(s.scalars(select(CardRow.uid).where(CardRow.status == "active")))
        amounts = {v.id: v.amount for v in vends}
    assert all(v.state in ("completed", "failed", "reversed") for v in vends)
    assert all(r.state in ("completed", "failed") for r in reversals)
    assert all(r.state in ("completed", "failed") for r in reissues)
    done = [v for v in vends if v.state == "completed"]
    assert sorted(v.sequence for v in done) == list(range(1, len(done) + 1))
    assert meter_seq == len(done) == sim.state.last_sequence
    # every completed sale reached the meter exactly once; reversed ones never did
    assert c.loaded == sum(v.credit for v in done) == Decimal(sim.state.cumulative_purchased)
    # one refund per completed reversal, of the amount paid, and reversed sales are exactly those
    completed_rev = sorted(r.vend_id for r in reversals if r.state == "completed")
    assert sorted(r.vend_id for r in refunds) == completed_rev
    assert all(r.amount == -amounts[r.vend_id] for r in refunds)
    assert sorted(v.id for v in vends if v.state == "reversed") == completed_rev
    assert len(completed_rev) >= len(REVERSAL_POINTS) - 1
    # one fee per completed reissue; one active card, the meter's
    assert len(fees) == sum(r.state == "completed" for r in reissues) >= len(REISSUE_POINTS)
    assert all(f.amount == Decimal("1.00") for f in fees)
    assert active == [c.uid] and sim.state.bound_uid == c.uid

