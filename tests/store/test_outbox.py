"""The persisted outbox (redelivery after a crash or restart, leases) and session flags."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from aimds.respond.actions import ActionKind, ResponseAction, ResponseConfig
from aimds.respond.scheduler import LaneSpec, Scheduler, default_handlers
from aimds.store.outbox import Outbox, SessionFlags
from aimds.store.sqlite import SQLiteStore

CONFIG = ResponseConfig.load()


class Sink:
    """A handler that records what it delivered."""

    def __init__(self) -> None:
        self.got: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, action: ResponseAction) -> None:
        with self.lock:
            self.got.append(action.id)

    def wait(self, n: int, timeout: float = 5.0) -> None:
        end = time.time() + timeout
        while len(self.got) < n and time.time() < end:
            time.sleep(0.01)


def _alerts(n: int) -> list[ResponseAction]:
    return [CONFIG.make(ActionKind.ALERT_WEBHOOK, session_id=f"s{i}", event_id=f"evt_{i}") for i in range(n)]


def _scheduler(store: SQLiteStore, sink: Sink, **kw: object) -> Scheduler:
    handlers = {**default_handlers(), ActionKind.ALERT_WEBHOOK: sink, ActionKind.ESCALATE: sink}
    return Scheduler(handlers, config=CONFIG, outbox=Outbox(store), sweep_s=0.05, **kw).start()  # type: ignore[arg-type]


def test_alerts_of_a_killed_process_are_delivered_after_restart(tmp_path: Path) -> None:
    # a worker process accepts 50 alerts (durable rows) and dies before delivering any (SIGKILL)
    code = textwrap.dedent(f"""
        import os, signal, threading
        from aimds.respond.actions import ActionKind, ResponseConfig
        from aimds.respond.scheduler import Scheduler
        from aimds.store.outbox import Outbox
        from aimds.store.sqlite import SQLiteStore
        store = SQLiteStore({str(tmp_path)!r})
        config = ResponseConfig.load()
        hang = threading.Event()
        s = Scheduler({{ActionKind.ALERT_WEBHOOK: lambda a: hang.wait()}}, config=config,
                      outbox=Outbox(store, lease_s=600)).start()
        for i in range(50):
            s.submit(config.make(ActionKind.ALERT_WEBHOOK, event_id=f"evt_{{i}}"))
        store.append_sync([])          # the 50 outbox rows are committed
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    with SQLiteStore(tmp_path) as store:
        assert Outbox(store).counts() == {"pending": 50, "delivered": 0, "dead": 0}
        sink = Sink()
        s = _scheduler(store, sink)     # its lease has 10 minutes left, but its owner is gone: taken at once
        try:
            sink.wait(50)
        finally:
            s.close()
        assert len(sink.got) == 50 == len(set(sink.got))
        store.append_sync([])
        assert Outbox(store).counts() == {"pending": 0, "delivered": 50, "dead": 0}


def test_graceful_restart_hands_over_what_is_left(tmp_path: Path) -> None:
    release = threading.Event()
    first_got: list[str] = []

    def hang(action: ResponseAction) -> None:
        first_got.append(action.id)
        release.wait(5)

    with SQLiteStore(tmp_path) as store:
        first = Scheduler({ActionKind.ALERT_WEBHOOK: hang}, config=CONFIG, outbox=Outbox(store),
                          lanes={"io": LaneSpec(1, 1000)}).start()
        alerts = _alerts(20)
        for a in alerts:
            first.submit(a)
        while not first_got:
            time.sleep(0.005)
        first.close(drain_s=0.05)      # one webhook hangs in the only io worker; 19 are queued
        assert Outbox(store).counts()["pending"] == 20
        sink = Sink()
        second = _scheduler(store, sink)   # same host, live pid: only the 19 released leases are free
        try:
            sink.wait(19)
            release.set()                  # the hung delivery completes in the first scheduler
        finally:
            second.close()
        store.append_sync([])
        assert Outbox(store).counts() == {"pending": 0, "delivered": 20, "dead": 0}
        assert sorted(sink.got + first_got) == sorted(a.id for a in alerts)   # each delivered exactly once


class _SlowClaim(Outbox):
    """An outbox whose claim returns late after reading, as a claim whose commit waits on a slow disk does."""

    def claim(self, limit: int = 1000, **kw: object) -> list[tuple[ResponseAction, float]]:
        got = super().claim(limit, **kw)  # type: ignore[arg-type]
        time.sleep(0.15)
        return got


def test_overlapping_sweeps_deliver_each_row_once(tmp_path: Path) -> None:
    # a second sweep that starts while the first one's claim is still in flight must not take (and deliver
    # again) the rows the first took and has delivered meanwhile
    with SQLiteStore(tmp_path) as store:
        Outbox(store, owner="elsewhere:1:gone", lease_s=-1).add_sync(_alerts(30))   # leases already lapsed
        sink = Sink()
        s = Scheduler({**default_handlers(), ActionKind.ALERT_WEBHOOK: sink}, config=CONFIG,
                      outbox=_SlowClaim(store), sweep_s=3600)
        starter = threading.Thread(target=s.start)   # start() claims the pending rows
        starter.start()
        time.sleep(0.05)
        try:
            s.recover()                               # a sweep that begins during that claim
            starter.join(5)
            sink.wait(30)
            time.sleep(0.3)
        finally:
            s.close()
        assert len(sink.got) == 30 == len(set(sink.got))
        store.append_sync([])
        assert Outbox(store).counts() == {"pending": 0, "delivered": 30, "dead": 0}


def test_a_live_lease_is_not_taken_until_it_lapses(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        other = Outbox(store, owner="elsewhere:1:abcd", lease_s=30)
        other.add_sync(_alerts(3))
        mine = Outbox(store)
        assert mine.claim() == []
        later = mine.claim(now=time.time() + 31)
        assert len(later) == 3 and all(due <= time.time() for _, due in later)
        assert other.claim() == []                          # now leased to `mine`
        assert {r.owner for r in mine.list()} == {mine.owner}


def test_submit_persists_before_queueing_and_marks_delivered(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        sink = Sink()
        s = _scheduler(store, sink)
        try:
            actions = [*_alerts(10), CONFIG.make(ActionKind.ESCALATE, event_id="evt_x"),
                       CONFIG.make(ActionKind.ALERT_LOG, event_id="evt_y")]
            assert s.submit_many(actions) == 12
            assert s.wait_idle(5)
        finally:
            s.close()
        store.append_sync([])
        rows = {r.action.id: r for r in Outbox(store).list(limit=100)}
        assert set(rows) == {a.id for a in actions[:11]}           # alert_log is not durable
        assert all(r.status == "delivered" and r.attempts == 1 and r.done_at for r in rows.values())
        assert rows[actions[0].id].action == actions[0].with_attempts(1)           # the stored action round-trips
        assert Outbox(store).list(status="pending") == []
        assert Outbox(store).purge(time.time() + 1) == 11


def test_session_flags_are_shared_and_expire(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as a, SQLiteStore(tmp_path) as b:  # two "worker processes"
        fa, fb = SessionFlags(a), SessionFlags(b)
        now = time.time()
        fa.set("s1", "quarantined", now + 60, reason="blocked-exfiltration", action_id="act_1")
        assert fa.quarantined_until("s1") == now + 60                # at once in this process
        a.append_sync([])
        assert fb.quarantined_until("s1") == now + 60                # after the commit in every process
        fb.set("s1", "quarantined", now + 10, wait=True)             # a shorter one does not shorten it
        assert fb.quarantined_until("s1") == now + 60
        fa.set("s2", "confirm_required", now + 1, wait=True)
        assert fb.active("s2") == {"confirm_required": now + 1}
        assert fb.active("s2", now=now + 2) == {}
        assert fb.purge(now=now + 2) == 1
        assert fb.clear("s1") == 1 and fb.quarantined_until("s1") is None
        assert fb.quarantined_until("nobody") is None


def test_quarantine_handler_sets_the_flag_within_its_deadline(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        flags = SessionFlags(store)
        s = Scheduler(default_handlers(flags), config=CONFIG).start()
        try:
            [q] = [a for a in CONFIG.for_verdict("block", ["secret"], 0.99, session_id="sx", event_id="evt_q")
                   if a.kind is ActionKind.QUARANTINE_SESSION]
            s.submit(q)
            assert s.wait_idle(2)
        finally:
            s.close()
        assert flags.quarantined_until("sx") == q.created + 3600
        assert s.stats()["missed"]["critical"] == 0
        assert os.path.exists(store.path)
