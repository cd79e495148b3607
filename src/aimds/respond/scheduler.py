"""A priority scheduler with deadlines for response actions.

::

    submit(action) ──► durable kind? ──yes──► outbox row (group commit) ─┐
          O(1), never         │no                                       ▼
          waits               └──────────────────────────────► lane "local" (in-process: block, confirm,
                                                                 quarantine, log)   1 worker thread
                                                               lane "io" (network: webhooks, escalation)
                                                                 N worker threads
    each lane: one bounded queue per priority; workers always take the most urgent action first;
    when a lane is full the least urgent queued action is shed (counted), never a more urgent one.
    failed attempts ──► timer thread (exponential backoff with jitter) ──► lane again, or dead letter.

Slow webhooks only ever occupy ``io`` workers, so they cannot delay the in-process actions of the
``local`` lane, and ``submit`` never does I/O itself. Counters (:meth:`Scheduler.stats`) and the
``on_event(name, action, info)`` hook (names: ``executed``, ``missed``, ``shed``, ``retry``,
``failed``) are there for metrics. A deadline is missed when an action reaches its final state
(executed or failed) after ``created + deadline_ms``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aimds.errors import AIMDSError
from aimds.respond.actions import ActionKind, Priority, ResponseAction, ResponseConfig
from aimds.respond.webhook import WebhookSender, backoff_delay

log = logging.getLogger("aimds.respond")
alert_log = logging.getLogger("aimds.alerts")

Handler = Callable[[ResponseAction], None]
EventHook = Callable[[str, ResponseAction, Mapping[str, Any]], None]
_P = len(Priority)


class SchedulerClosed(AIMDSError):
    """The scheduler no longer accepts actions."""


@dataclass(frozen=True, slots=True)
class LaneSpec:
    """Worker threads and queue capacity (all priorities together) of one lane."""

    workers: int = 1
    capacity: int = 10_000


DEFAULT_LANES: Mapping[str, LaneSpec] = {"local": LaneSpec(1, 20_000), "io": LaneSpec(8, 10_000)}


class _Lane:
    def __init__(self, name: str, spec: LaneSpec) -> None:
        self.name = name
        self.capacity = spec.capacity
        self.queues: list[deque[ResponseAction]] = [deque() for _ in range(_P)]
        self.cond = threading.Condition()
        self.size = 0
        self.busy = 0
        self.stopping = False

    def push(self, action: ResponseAction) -> ResponseAction | None:
        """Queue ``action``; the action shed to make room (possibly ``action`` itself), else None."""
        with self.cond:
            victim = None
            if self.size >= self.capacity:
                for p in range(_P - 1, int(action.priority), -1):  # least urgent first, never as urgent
                    if self.queues[p]:
                        victim = self.queues[p].popleft()
                        self.size -= 1
                        break
                else:
                    return action
            self.queues[action.priority].append(action)
            self.size += 1
            self.cond.notify()
            return victim

    def pop(self) -> ResponseAction | None:
        with self.cond:
            while self.size == 0 and not self.stopping:
                self.cond.wait()
            if self.stopping:  # what is still queued stays in the outbox (durable kinds) for the next process
                return None
            for q in self.queues:
                if q:
                    self.size -= 1
                    self.busy += 1
                    return q.popleft()
        return None  # pragma: no cover

    def finished(self) -> None:
        with self.cond:
            self.busy -= 1
            self.cond.notify_all()

    @property
    def idle(self) -> bool:
        return self.size == 0 and self.busy == 0


class Scheduler:
    """Runs response actions by priority and deadline on separate lanes (see the module docstring).

    ``handlers`` map each kind to a function that performs it (raise to fail; an exception with
    ``retryable = False`` is never retried, others are retried for durable kinds). ``outbox``
    (:class:`aimds.store.outbox.Outbox`) makes durable kinds survive a restart; without it nothing
    is persisted.
    """

    def __init__(self, handlers: Mapping[ActionKind | str, Handler], *, config: ResponseConfig | None = None,
                 outbox: Any = None, lanes: Mapping[str, LaneSpec] | None = None, on_event: EventHook | None = None,
                 max_attempts: int = 8, backoff_base_s: float = 0.5, backoff_max_s: float = 300.0,
                 sweep_s: float = 5.0, latency_window: int = 20_000, inline_critical: bool = True) -> None:
        self.config = config or ResponseConfig.load()
        self.handlers = {ActionKind(k): h for k, h in handlers.items()}
        self.outbox = outbox
        self.on_event = on_event
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.sweep_s = sweep_s
        #: Critical in-process actions (block / confirm / quarantine flags: a queued store write) run in
        #: ``submit`` itself: there is no queue for them to wait in behind anything.
        self.inline_critical = inline_critical
        specs = {**DEFAULT_LANES, **(lanes or {})}
        self._lanes = {name: _Lane(name, spec) for name, spec in specs.items()}
        self._workers: list[threading.Thread] = []
        self._specs = specs
        self._lock = threading.Lock()
        #: One claim at a time: a second claim running beside the first would see the rows the first took as
        #: this process's own, free ones, and deliver again those the first delivered in between.
        self._recover_lock = threading.Lock()
        self._inflight: set[str] = set()     # durable action ids this process holds (persisting, queued, waiting)
        self._persisting = 0
        self._running: set[str] = set()      # ids a worker is executing now
        self._timer: list[tuple[float, int, ResponseAction]] = []
        self._seq = itertools.count()
        self._timer_cond = threading.Condition()
        self._closed = False
        self._started = False
        labels = [p.label for p in Priority]
        self._n: dict[str, Any] = {"submitted": 0, "retries": 0, "persist_errors": 0,
                                   **{k: dict.fromkeys(labels, 0) for k in ("executed", "missed", "shed", "failed")}}
        self._latency = {p: deque[float](maxlen=latency_window) for p in Priority}

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> Scheduler:
        """Start the lane workers and the timer; claim pending outbox rows (redelivery after a restart)."""
        if self._started:
            return self
        self._started = True
        for name, spec in self._specs.items():
            for i in range(spec.workers):
                t = threading.Thread(target=self._work, args=(self._lanes[name],), name=f"aimds-respond-{name}-{i}",
                                     daemon=True)
                t.start()
                self._workers.append(t)
        t = threading.Thread(target=self._tick, name="aimds-respond-timer", daemon=True)
        t.start()
        self._workers.append(t)
        self.recover()
        return self

    def close(self, drain_s: float = 2.0) -> None:
        """Stop accepting, let queued actions run for up to ``drain_s``, stop the workers and release this
        process's outbox leases so that the next process redelivers what is left at once."""
        if self._closed:
            return
        self._closed = True
        self.wait_idle(drain_s)
        for lane in self._lanes.values():
            with lane.cond:
                lane.stopping = True
                lane.cond.notify_all()
        with self._timer_cond:
            self._timer_cond.notify_all()
        deadline = time.monotonic() + max(0.5, drain_s)
        for t in self._workers:
            t.join(max(0.0, deadline - time.monotonic()))
        if self.outbox is not None:
            try:
                with self._lock:  # what is still running finishes here and records its own outcome
                    held = self._inflight - self._running
                self.outbox.release(held)
            except AIMDSError as exc:
                log.error("could not release outbox leases: %s", exc)

    def __enter__(self) -> Scheduler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- submitting
    def submit(self, action: ResponseAction) -> bool:
        """Queue an action without waiting; False when it was shed at once (counted). Durable kinds are
        written to the outbox by the store's writer and queued once committed."""
        if self._closed:
            raise SchedulerClosed("the response scheduler is closed")
        with self._lock:
            self._n["submitted"] += 1
        spec = self.config.kinds[action.kind]
        if self.inline_critical and self._started and spec.lane == "local" and not spec.durable \
                and action.priority is Priority.CRITICAL:
            self._run(action)
            return True
        if self.outbox is not None and spec.durable:
            with self._lock:
                self._inflight.add(action.id)
                self._persisting += 1
            try:
                self.outbox.add([action], done=lambda error: self._persisted(action, error))
            except AIMDSError as exc:  # store queue full or closed: still try in memory
                self._persisted(action, exc)
            return True
        return self._enqueue(action)

    def submit_many(self, actions: list[ResponseAction]) -> int:
        """Submit several actions (one outbox write for the durable ones); how many were not shed at once."""
        durable = [a for a in actions if self.outbox is not None and self.config.kinds[a.kind].durable]
        if self._closed:
            raise SchedulerClosed("the response scheduler is closed")
        accepted = 0
        if durable:
            with self._lock:
                self._n["submitted"] += len(durable)
                self._inflight.update(a.id for a in durable)
                self._persisting += len(durable)

            def done(error: BaseException | None) -> None:
                for a in durable:
                    self._persisted(a, error)

            try:
                self.outbox.add(durable, done=done)
            except AIMDSError as exc:
                done(exc)
            accepted += len(durable)
        ids = {a.id for a in durable}
        for a in actions:
            if a.id not in ids:
                accepted += self.submit(a)
        return accepted

    def _persisted(self, action: ResponseAction, error: BaseException | None) -> None:
        with self._lock:
            self._persisting -= 1
            if error is not None:
                self._n["persist_errors"] += 1
        if error is not None:
            log.error("response action %s not persisted (%s); delivering from memory", action.id, error)
        self._enqueue(action)

    def _enqueue(self, action: ResponseAction) -> bool:
        lane = self._lanes[self.config.kinds[action.kind].lane]
        victim = lane.push(action)
        if victim is not None:
            self._shed(victim)
        return victim is not action

    def _shed(self, action: ResponseAction) -> None:
        # a shed durable action stays pending in the outbox; the next sweep offers it again
        with self._lock:
            self._n["shed"][action.priority.label] += 1
            self._inflight.discard(action.id)
        self._emit("shed", action, {})

    # ----------------------------------------------------------------- running
    def _work(self, lane: _Lane) -> None:
        while True:
            action = lane.pop()
            if action is None:
                return
            with self._lock:
                self._running.add(action.id)
            try:
                self._run(action)
            except Exception:  # pragma: no cover - _run handles handler errors; never let a worker die
                log.exception("response worker error")
            finally:
                with self._lock:
                    self._running.discard(action.id)
                lane.finished()

    def _run(self, action: ResponseAction) -> None:
        durable = self.outbox is not None and self.config.kinds[action.kind].durable
        attempt = action.attempts + 1
        handler = self.handlers.get(action.kind)
        try:
            if handler is None:
                raise _NoHandler(f"no handler for {action.kind}")
            handler(action)
        except Exception as exc:
            retryable = getattr(exc, "retryable", durable)
            if retryable and attempt < self.max_attempts and not self._closed:
                delay = self._retry_delay(attempt, exc)
                next_at = time.time() + delay
                with self._lock:
                    self._n["retries"] += 1
                if durable:
                    self.outbox.mark_retry(action.id, attempt, next_at, str(exc))
                self._emit("retry", action, {"attempt": attempt, "error": str(exc), "delay_s": delay})
                self._schedule(next_at, action.with_attempts(attempt))
                return
            if retryable and self._closed:  # shutting down: leave it pending for the next process
                if durable:
                    self.outbox.mark_retry(action.id, attempt, time.time(), str(exc))
                with self._lock:
                    self._inflight.discard(action.id)
                return
            if durable:
                self.outbox.mark_dead(action.id, attempt, str(exc))
            self._final(action, ok=False, attempts=attempt, error=str(exc))
            return
        # the row's new state is queued for the store before the id leaves the in-flight set, so that a
        # concurrent sweep cannot claim a row that has just been delivered
        if durable:
            self.outbox.mark_delivered(action.id, attempt)
        self._final(action, ok=True, attempts=attempt)

    def _final(self, action: ResponseAction, *, ok: bool, attempts: int, error: str = "") -> None:
        now = time.time()
        latency_ms = (now - action.created) * 1000.0
        late = now > action.deadline
        label = action.priority.label
        with self._lock:
            self._n["executed" if ok else "failed"][label] += 1
            if late:
                self._n["missed"][label] += 1
            if ok:
                self._latency[action.priority].append(latency_ms)
            self._inflight.discard(action.id)
        info = {"latency_ms": latency_ms, "attempts": attempts, "late": late, **({"error": error} if error else {})}
        self._emit("executed" if ok else "failed", action, info)
        if late:
            self._emit("missed", action, info)

    def _retry_delay(self, attempt: int, exc: BaseException) -> float:
        delay = backoff_delay(attempt, base_s=self.backoff_base_s, cap_s=self.backoff_max_s)
        after = getattr(exc, "retry_after_s", None)
        return max(delay, min(after, self.backoff_max_s)) if after is not None else delay

    def _emit(self, name: str, action: ResponseAction, info: Mapping[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(name, action, info)
        except Exception:  # a metrics hook must never break the scheduler
            log.exception("scheduler on_event hook failed")

    # ----------------------------------------------------------------- timer: retries and outbox sweeps
    def _schedule(self, when: float, action: ResponseAction) -> None:
        with self._timer_cond:
            heapq.heappush(self._timer, (when, next(self._seq), action))
            self._timer_cond.notify()

    def _tick(self) -> None:
        next_sweep = time.monotonic() + self.sweep_s
        while not self._closed:
            due: list[ResponseAction] = []
            with self._timer_cond:
                now = time.time()
                while self._timer and self._timer[0][0] <= now:
                    due.append(heapq.heappop(self._timer)[2])
                if not due:
                    wait = next_sweep - time.monotonic()
                    if self._timer:
                        wait = min(wait, self._timer[0][0] - now)
                    if wait > 0:
                        self._timer_cond.wait(wait)
            for action in due:
                self._enqueue(action)
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self.sweep_s
                try:
                    self.recover()
                except Exception:
                    log.exception("outbox sweep failed")

    def recover(self) -> int:
        """Renew this process's outbox leases and take pending rows nobody else holds (after a restart, a crash
        of another worker, a shed or ``aimds outbox retry``); the number of actions taken."""
        if self.outbox is None or self._closed:
            return 0
        with self._recover_lock:
            self.outbox.renew()
            io = [lane for name, lane in self._lanes.items() if name == "io"] or list(self._lanes.values())
            room = max(0, min(lane.capacity - lane.size for lane in io))
            if room == 0:
                return 0
            with self._lock:
                exclude = set(self._inflight)
            claimed = self.outbox.claim(room, exclude=exclude)
            now = time.time()
            for action, due in claimed:
                with self._lock:
                    if action.id in self._inflight:
                        continue
                    self._inflight.add(action.id)
                if due > now:
                    self._schedule(due, action)
                else:
                    self._enqueue(action)
            return len(claimed)

    # ----------------------------------------------------------------- observing
    def wait_idle(self, timeout: float, *, include_retries: bool = False) -> bool:
        """Wait until nothing is persisting, queued or running (and, if asked, no retry is waiting)."""
        end = time.monotonic() + timeout
        while True:
            with self._lock:
                persisting = self._persisting
            with self._timer_cond:
                waiting = bool(self._timer) and include_retries
            if persisting == 0 and not waiting and all(lane.idle for lane in self._lanes.values()):
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.002)

    def stats(self) -> dict[str, Any]:
        """Counters by priority, queue depths by lane and latency percentiles (ms) by priority."""
        with self._lock:
            out = {k: dict(v) if isinstance(v, dict) else v for k, v in self._n.items()}
            lat = {p.label: sorted(self._latency[p]) for p in Priority}
            out["inflight_durable"] = len(self._inflight)
        with self._timer_cond:
            out["waiting_retry"] = len(self._timer)
        out["queued"] = {name: lane.size for name, lane in self._lanes.items()}
        out["latency_ms"] = {label: _percentiles(v) for label, v in lat.items() if v}
        return out


class _NoHandler(AIMDSError):
    retryable = False


def _percentiles(v: list[float]) -> dict[str, float]:
    def q(f: float) -> float:
        return round(v[min(len(v) - 1, int(f * len(v)))], 3)

    return {"n": len(v), "p50": q(0.5), "p99": q(0.99), "max": round(v[-1], 3)}


# --------------------------------------------------------------------- default handlers
def alert_body(action: ResponseAction) -> dict[str, Any]:
    """What an alert says (webhook body, log line): ids, kind, priority, reason and the action's payload —
    never prompt text (the payload holds an input HMAC and categories, not the input)."""
    return {"type": f"aimds.{action.kind}", "action_id": action.id, "priority": action.priority.label,
            "created": action.created, "session_id": action.session_id, "event_id": action.event_id,
            "reason": action.reason, "attempt": action.attempts + 1, "data": dict(action.payload)}


def default_handlers(flags: Any = None, webhook: WebhookSender | None = None, *,
                     escalate: Handler | None = None) -> dict[ActionKind, Handler]:
    """Handlers for every kind: session flags through ``flags`` (:class:`aimds.store.outbox.SessionFlags`;
    without it the flag kinds only log), signed POSTs through ``webhook`` (without it, webhook alerts go
    to the ``aimds.alerts`` log), and ``escalate`` (default: the webhook, else the log)."""

    def to_log(action: ResponseAction) -> None:
        alert_log.warning(json.dumps(alert_body(action), default=str, sort_keys=True))

    def flag(name: str) -> Handler:
        def run(action: ResponseAction) -> None:
            if flags is None or not action.session_id:
                to_log(action)
                return
            ttl = float(action.payload.get("ttl_s", 900.0))
            flags.set(action.session_id, name, action.created + ttl, reason=action.reason, action_id=action.id)
        return run

    def post(action: ResponseAction) -> None:
        assert webhook is not None
        webhook.send(webhook.encode(alert_body(action)), action.id)

    hook = post if webhook is not None else to_log
    return {ActionKind.BLOCK: flag("blocked"), ActionKind.REQUIRE_CONFIRMATION: flag("confirm_required"),
            ActionKind.QUARANTINE_SESSION: flag("quarantined"), ActionKind.ALERT_LOG: to_log,
            ActionKind.ALERT_WEBHOOK: hook, ActionKind.ESCALATE: escalate or hook}
