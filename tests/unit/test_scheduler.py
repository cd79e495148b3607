"""The response scheduler: priority order, deadlines, shedding, retries, non-blocking submit, lane isolation."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import pytest

from aimds.respond.actions import ActionKind, Priority, ResponseAction, ResponseConfig
from aimds.respond.scheduler import LaneSpec, Scheduler, SchedulerClosed
from aimds.respond.webhook import DeliveryError

CONFIG = ResponseConfig.load()


def _action(kind: ActionKind, priority: Priority, deadline_ms: int = 10_000, **kw: object) -> ResponseAction:
    return ResponseAction(kind, priority, deadline_ms, **kw)  # type: ignore[arg-type]


class Gate:
    """A handler that blocks the worker on its first call until released, recording what it ran."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.order: list[str] = []

    def __call__(self, action: ResponseAction) -> None:
        if action.reason == "gate":
            self.entered.set()
            assert self.release.wait(5)
            return
        self.order.append(action.reason)


def _sched(handler: Callable[[ResponseAction], None], **kw: object) -> Scheduler:
    """A started scheduler; critical in-process actions are queued like the rest (to test the queues) unless
    ``inline_critical=True`` is passed."""
    handlers = dict.fromkeys(ActionKind, handler)
    kw.setdefault("inline_critical", False)
    return Scheduler(handlers, config=CONFIG, **kw).start()  # type: ignore[arg-type]


def test_most_urgent_first_within_a_lane() -> None:
    gate = Gate()
    s = _sched(gate)
    try:
        s.submit(_action(ActionKind.ALERT_LOG, Priority.LOW, reason="gate"))
        assert gate.entered.wait(5)
        for i, prio in enumerate([Priority.LOW, Priority.MEDIUM, Priority.HIGH, Priority.CRITICAL] * 3):
            s.submit(_action(ActionKind.BLOCK, prio, reason=f"{prio.label}{i // 4}"))
        gate.release.set()
        assert s.wait_idle(5)
    finally:
        s.close()
    assert gate.order == [f"{p}{i}" for p in ("critical", "high", "medium", "low") for i in range(3)]
    assert s.stats()["executed"] == {"critical": 3, "high": 3, "medium": 3, "low": 4}


def test_missed_deadlines_are_counted_by_priority() -> None:
    def slow(action: ResponseAction) -> None:
        time.sleep(0.03 if action.reason == "slow" else 0)

    events: list[tuple[str, str]] = []
    s = _sched(slow, on_event=lambda name, a, info: events.append((name, a.reason)))
    try:
        s.submit(_action(ActionKind.BLOCK, Priority.CRITICAL, deadline_ms=5, reason="slow"))
        s.submit(_action(ActionKind.BLOCK, Priority.HIGH, deadline_ms=60_000, reason="fast"))
        assert s.wait_idle(5)
    finally:
        s.close()
    st = s.stats()
    assert st["missed"] == {"critical": 1, "high": 0, "medium": 0, "low": 0}
    assert st["executed"]["critical"] == 1 and st["executed"]["high"] == 1
    assert ("missed", "slow") in events and ("missed", "fast") not in events
    assert st["latency_ms"]["critical"]["max"] >= 30


def test_full_lane_sheds_least_urgent_first_and_counts_it() -> None:
    gate = Gate()
    shed: list[str] = []
    s = _sched(gate, lanes={"local": LaneSpec(1, 3)},
               on_event=lambda name, a, info: shed.append(a.reason) if name == "shed" else None)
    try:
        s.submit(_action(ActionKind.ALERT_LOG, Priority.LOW, reason="gate"))
        assert gate.entered.wait(5)
        assert s.submit(_action(ActionKind.ALERT_LOG, Priority.LOW, reason="low1"))
        assert s.submit(_action(ActionKind.ALERT_LOG, Priority.MEDIUM, reason="med1"))
        assert s.submit(_action(ActionKind.ALERT_LOG, Priority.LOW, reason="low2"))
        assert s.submit(_action(ActionKind.BLOCK, Priority.CRITICAL, reason="crit1"))     # evicts low1 (oldest low)
        assert s.submit(_action(ActionKind.BLOCK, Priority.CRITICAL, reason="crit2"))     # evicts low2
        assert s.submit(_action(ActionKind.BLOCK, Priority.CRITICAL, reason="crit3"))     # evicts med1
        assert not s.submit(_action(ActionKind.BLOCK, Priority.CRITICAL, reason="crit4"))  # nothing less urgent
        assert not s.submit(_action(ActionKind.ALERT_LOG, Priority.LOW, reason="low3"))
        gate.release.set()
        assert s.wait_idle(5)
    finally:
        s.close()
    assert shed == ["low1", "low2", "med1", "crit4", "low3"]
    assert gate.order == ["crit1", "crit2", "crit3"]
    assert s.stats()["shed"] == {"critical": 1, "high": 0, "medium": 1, "low": 3}


def test_slow_io_never_delays_submit_or_local_actions() -> None:
    release = threading.Event()
    done_at: dict[str, float] = {}

    def handler(action: ResponseAction) -> None:
        if action.kind is ActionKind.ALERT_WEBHOOK:
            release.wait(5)                      # a webhook that hangs
        else:
            done_at[action.id] = time.time()

    s = _sched(handler, lanes={"io": LaneSpec(2, 500)})
    try:
        t0 = time.perf_counter()
        for i in range(400):
            s.submit(_action(ActionKind.ALERT_WEBHOOK, Priority.HIGH, reason=f"w{i}"))
        submit_s = time.perf_counter() - t0
        crit = [_action(ActionKind.QUARANTINE_SESSION, Priority.CRITICAL, deadline_ms=50) for _ in range(20)]
        for a in crit:
            s.submit(a)
        end = time.time() + 2
        while len(done_at) < 20 and time.time() < end:
            time.sleep(0.005)
        assert len(done_at) == 20
        assert max(done_at[a.id] - a.created for a in crit) < 0.05
        assert submit_s / 400 < 0.001            # submit does no I/O: well under 1 ms each
        assert s.stats()["queued"]["io"] == 398  # two webhooks hang in the two io workers
    finally:
        release.set()
        s.close(drain_s=0.2)


def test_retryable_failures_back_off_then_succeed() -> None:
    calls: list[float] = []

    def flaky(action: ResponseAction) -> None:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise DeliveryError("503", retryable=True, status=503)

    events: list[str] = []
    s = _sched(flaky, backoff_base_s=0.02, backoff_max_s=0.05, on_event=lambda n, a, i: events.append(n))
    try:
        s.submit(_action(ActionKind.ALERT_WEBHOOK, Priority.HIGH))
        assert s.wait_idle(5, include_retries=True)
    finally:
        s.close()
    assert len(calls) == 3 and all(b - a >= 0.009 for a, b in itertools.pairwise(calls))
    st = s.stats()
    assert st["retries"] == 2 and st["executed"]["high"] == 1 and st["failed"]["high"] == 0
    assert events == ["retry", "retry", "executed"]


def test_permanent_failure_and_exhausted_retries_fail() -> None:
    def broken(action: ResponseAction) -> None:
        raise DeliveryError("nope", retryable=action.reason == "transient", status=400)

    s = _sched(broken, max_attempts=3, backoff_base_s=0.002, backoff_max_s=0.005)
    try:
        s.submit(_action(ActionKind.ALERT_WEBHOOK, Priority.HIGH, reason="permanent"))
        s.submit(_action(ActionKind.ALERT_WEBHOOK, Priority.MEDIUM, reason="transient"))
        assert s.wait_idle(5, include_retries=True)
    finally:
        s.close()
    st = s.stats()
    assert st["failed"] == {"critical": 0, "high": 1, "medium": 1, "low": 0}
    assert st["retries"] == 2     # the transient one: attempts 1 and 2 retried, 3 is the last


def test_missing_handler_fails_and_a_broken_hook_is_harmless() -> None:
    def hook(name: str, action: ResponseAction, info: object) -> None:
        raise RuntimeError("metrics down")

    s = Scheduler({ActionKind.BLOCK: lambda a: None}, config=CONFIG, on_event=hook).start()
    try:
        s.submit(_action(ActionKind.BLOCK, Priority.CRITICAL))
        s.submit(_action(ActionKind.ESCALATE, Priority.HIGH))
        assert s.wait_idle(5, include_retries=True)
    finally:
        s.close()
    st = s.stats()
    assert st["executed"]["critical"] == 1 and st["failed"]["high"] == 1 and st["retries"] == 0
    with pytest.raises(SchedulerClosed):
        s.submit(_action(ActionKind.BLOCK, Priority.CRITICAL))


def test_critical_in_process_actions_do_not_wait_behind_the_lane() -> None:
    gate = Gate()
    s = _sched(gate, lanes={"local": LaneSpec(1, 3)}, inline_critical=True)
    try:
        s.submit(_action(ActionKind.ALERT_LOG, Priority.LOW, reason="gate"))
        assert gate.entered.wait(5)          # the only local worker is busy
        assert s.submit(_action(ActionKind.QUARANTINE_SESSION, Priority.CRITICAL, reason="crit"))
        assert gate.order == ["crit"]        # ran in submit, not queued behind the busy worker
        gate.release.set()
        assert s.wait_idle(5)
    finally:
        s.close()
    assert s.stats()["executed"]["critical"] == 1 and s.stats()["missed"]["critical"] == 0
