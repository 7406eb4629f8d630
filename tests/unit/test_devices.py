"""The device manager: one worker thread per reader, events, states, timeouts and cancel."""

import threading
import time

import pytest

from dbmis_core.devices import DeviceManager, ReaderState
from dbmis_core.errors import CardTimeoutError, ReaderError
from dbmis_sim.reader import SimReader


class Recorder:
    def __init__(self):
        self.events = []
        self.cond = threading.Condition()

    def __call__(self, event):
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_for(self, pred, timeout=5.0):
        with self.cond:
            assert self.cond.wait_for(lambda: any(pred(e) for e in self.events), timeout), \
                f"no matching event in {self.events}"


@pytest.fixture
def sim(tmp_path):
    return SimReader(tmp_path / "sim")


@pytest.fixture
def manager(sim):
    dm = DeviceManager(lambda: SimReader(sim.folder), name="test reader", poll_interval=0.02)
    yield dm
    dm.stop()


def test_insert_and_remove_events_and_states(manager, sim):
    rec = Recorder()
    manager.subscribe(rec)
    manager.start()
    rec.wait_for(lambda e: e.state == ReaderState.NO_CARD)
    sim.new_card()
    rec.wait_for(lambda e: e.kind == "inserted")
    sim.eject()
    rec.wait_for(lambda e: e.kind == "removed")
    kinds = [e.kind for e in rec.events if e.kind != "state"]
    assert kinds == ["inserted", "removed"]
    assert manager.state == ReaderState.NO_CARD


def test_jobs_run_in_order_on_one_worker_thread(manager, sim):
    sim.new_card()
    manager.start()
    seen = []
    futures = [manager.submit(lambda i=i: seen.append((i, threading.current_thread().name)))
               for i in range(5)]
    for f in futures:
        f.result(5)
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert {name for _, name in seen} == {"dbmis-device-test reader"}
    assert manager.call(lambda: manager.reader.card_present()) is True


def test_busy_state_while_a_job_runs(manager):
    rec = Recorder()
    manager.subscribe(rec)
    manager.start()
    gate = threading.Event()
    fut = manager.submit(gate.wait, 5)
    rec.wait_for(lambda e: e.state == ReaderState.BUSY)
    gate.set()
    assert fut.result(5) is True
    deadline = time.monotonic() + 5
    while [e.state for e in rec.events][-2:] != [ReaderState.BUSY, ReaderState.NO_CARD]:
        assert time.monotonic() < deadline, rec.events
        time.sleep(0.01)


def test_timeout_and_cancel(manager):
    manager.start()
    gate = threading.Event()
    manager.submit(gate.wait, 5)
    queued = manager.submit(lambda: "never")
    assert queued.cancel()  # not started yet: cancel works
    with pytest.raises(CardTimeoutError, match="did not finish within 0.1 s"):
        manager.call(time.sleep, 0.01, timeout=0.1)  # waits behind the blocked job
    gate.set()
    assert manager.call(lambda: "after", timeout=5) == "after"


def test_reader_only_on_its_worker_thread(manager, sim):
    manager.start()
    with pytest.raises(ReaderError, match="outside its device worker thread"):
        _ = manager.reader


def test_missing_reader_is_reported_and_recovers(tmp_path):
    available = threading.Event()

    def open_reader():
        if not available.is_set():
            raise ReaderError("card reader service is not running")
        return SimReader(tmp_path / "sim")

    rec = Recorder()
    dm = DeviceManager(open_reader, poll_interval=0.02, reopen_interval=0.05)
    dm.subscribe(rec)
    dm.start()
    try:
        rec.wait_for(lambda e: e.state == ReaderState.NO_READER and "not running" in e.detail)
        with pytest.raises(ReaderError, match="not running"):
            dm.call(lambda: dm.reader)
        available.set()
        rec.wait_for(lambda e: e.state == ReaderState.NO_CARD)
    finally:
        dm.stop()


def test_a_failing_listener_does_not_stop_the_device(manager, sim):
    def broken(_event):
        raise RuntimeError("listener bug")

    rec = Recorder()
    manager.subscribe(broken)
    manager.subscribe(rec)
    manager.start()
    rec.wait_for(lambda e: e.state == ReaderState.NO_CARD)
    sim.new_card()
    rec.wait_for(lambda e: e.kind == "inserted")


def test_native_reader_events_wake_the_worker(tmp_path):
    """A driver with subscribe() (PC/SC's card monitor) is looked at as soon as it signals."""

    class EventingReader(SimReader):
        callback = None

        def subscribe(self, callback):
            EventingReader.callback = callback

        def unsubscribe(self):
            EventingReader.callback = None

    sim = SimReader(tmp_path / "sim")
    rec = Recorder()
    dm = DeviceManager(lambda: EventingReader(sim.folder), poll_interval=60)  # polling alone: never
    dm.subscribe(rec)
    dm.start()
    try:
        rec.wait_for(lambda e: e.state == ReaderState.NO_CARD)
        sim.new_card()
        EventingReader.callback("inserted")
        rec.wait_for(lambda e: e.kind == "inserted", timeout=2)
    finally:
        dm.stop()


def test_a_reader_whose_events_fail_counts_as_missing(tmp_path):
    class DeadMonitorReader(SimReader):
        def subscribe(self, callback):
            raise ReaderError("card reader service is not running")

    rec = Recorder()
    dm = DeviceManager(lambda: DeadMonitorReader(tmp_path / "sim"), poll_interval=0.02,
                       reopen_interval=0.05)
    dm.subscribe(rec)
    dm.start()
    try:
        rec.wait_for(lambda e: e.state == ReaderState.NO_READER and "not running" in e.detail)
        assert dm.running
    finally:
        dm.stop()
