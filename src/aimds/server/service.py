"""The service's shared state: guard, store, auth, limits and metrics, and the async bridges between them."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from aimds.detect.memory import MemoryDetector
from aimds.detect.output import CanaryDetector
from aimds.errors import ConfigError, InputError
from aimds.pipeline import Guard, StageCallback
from aimds.respond import canary as canaries
from aimds.respond.actions import ResponseConfig
from aimds.respond.scheduler import Scheduler, default_handlers
from aimds.respond.webhook import WebhookSender
from aimds.server.auth import Authenticator, Principal
from aimds.server.cache import VerdictCache
from aimds.server.errors import APIError
from aimds.server.events import make_event
from aimds.server.metrics import Metrics
from aimds.server.model_reload import ModelReloader
from aimds.server.ratelimit import RateLimiter
from aimds.server.settings import ServiceSettings
from aimds.server.traces import TraceManager, confirmation_key
from aimds.store.graph import AttackGraph
from aimds.store.keyfile import load_or_create
from aimds.store.memory_live import attach_memory
from aimds.store.models import ModelRegistry
from aimds.store.outbox import Outbox, SessionFlags
from aimds.store.sessions import SQLiteSessionStore
from aimds.store.sqlite import SQLiteStore, StoreError
from aimds.store.traces import TraceStore
from aimds.store.vault import SQLiteVault
from aimds.train.data import read_jsonl
from aimds.types import Action, ScanRequest, Verdict

log = logging.getLogger("aimds.server")
HMAC_KEY_FILE = "input_hmac.key"
CANARY_KEY_FILE = "canary.key"


def load_canary_key(data_dir: Path) -> bytes:
    """The deployment's canary key (created once, mode 0600)."""
    return bytes.fromhex(load_or_create(data_dir / CANARY_KEY_FILE, lambda: canaries.new_key().hex().encode()).decode())


def load_hash_key(data_dir: Path) -> bytes:
    """The deployment's key for input hashes (created once, mode 0600)."""
    return load_or_create(data_dir / HMAC_KEY_FILE, lambda: secrets.token_bytes(32))


class Service:
    """Everything a request handler needs, created once per worker process."""

    def __init__(self, settings: ServiceSettings, guard: Guard | None = None,
                 store: SQLiteStore | None = None) -> None:
        settings.validate()
        names = [d.name for d in guard.detectors] if guard is not None else list(settings.guard.detectors)
        unknown = [n for n in settings.trace_detectors if n not in [*names, *(["memory"] if settings.memory else [])]]
        if unknown:   # before anything is opened
            raise ConfigError(f"trace_detectors: {', '.join(unknown)} not among the service's detectors "
                              f"({', '.join(names)})")
        self.settings = settings
        self.store = store or SQLiteStore(settings.data_dir, checkpoint_every=settings.checkpoint_every,
                                          synchronous=settings.synchronous, signing_key=settings.signing_key)
        self.hash_key = load_hash_key(settings.data_dir)
        self.canary_key = load_canary_key(settings.data_dir)
        base = guard or Guard(settings.guard)
        # canary tokens verify with this deployment's key (a later input carrying one is a prompt leak too)
        detectors = [CanaryDetector(key=self.canary_key) if d.name == "canary" else d for d in base.detectors]
        if settings.memory and not any(d.name == "memory" for d in detectors):
            detectors.append(MemoryDetector(**base.settings.detector_options.get("memory", {})))
        self.sessions = SQLiteSessionStore(self.store, self.hash_key) if settings.sessions else None
        # the same detectors and policy, with session analysis over the shared store
        self.guard = Guard(base.settings, detectors=detectors, policy=base.policy, sessions=self.sessions,
                           analyzer=base.analyzer)
        # attack memory (issue 4): the guard's `memory` detector searches this store's exemplars
        self.memory = attach_memory(self.guard, self.store, store_raw_text=settings.store_raw_text)
        # learned classifier versions (issue 4): this worker follows the store's active version
        self.models = ModelRegistry(self.store)
        self.reloader = ModelReloader(self.guard, self.models, poll_s=settings.model_poll_s)
        # exact-duplicate verdict cache (off unless cache_ttl_s > 0)
        self.cache = VerdictCache(settings.cache_ttl_s, settings.cache_max_entries)
        self.metrics = Metrics()
        self.store.on_commit = self.metrics.observe_commit
        self.vault = SQLiteVault(self.store)
        self.flags = SessionFlags(self.store)
        self.graph = AttackGraph(self.store)
        webhook = (WebhookSender(settings.alert_webhook_url, settings.alert_webhook_secret or "")
                   if settings.alert_webhook_url else None)
        self.responses = Scheduler(default_handlers(self.flags, webhook), config=ResponseConfig.load(),
                                   outbox=Outbox(self.store), on_event=self.metrics.observe_response)
        self.traces = TraceManager(self._trace_guard(settings.trace_detectors), TraceStore(self.store),
                                   confirmations=settings.confirmations,
                                   confirmation_key=confirmation_key(self.hash_key),
                                   confirmation_ttl_s=settings.confirmation_ttl_s,
                                   deep_guard=self.guard if settings.trace_deep_scan == "deferred" else None,
                                   deep_wait_s=settings.trace_deep_wait_s)
        self.trace_reloader = ModelReloader(self.traces.guard, self.models, poll_s=settings.model_poll_s)
        self.auth = Authenticator(settings, self.store)
        self.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        self.executor = ThreadPoolExecutor(settings.scan_threads, thread_name_prefix="aimds-scan")
        self._queued = 0          # scan jobs submitted and not finished (event-loop thread only)
        self._background = ThreadPoolExecutor(1, thread_name_prefix="aimds-escalate")
        self._uncertain: dict[str, tuple[str, str]] = {}   # event id → (text, category) awaiting commit
        self.ready = False

    async def start(self) -> None:
        """Load models and rules (off the event loop); start the response scheduler (redelivers pending alerts)."""
        await asyncio.get_running_loop().run_in_executor(self.executor, self.guard.load)
        await asyncio.get_running_loop().run_in_executor(self.executor, self.reloader.start)
        if self.traces.guard is not self.guard:   # its own n-gram model follows the learned versions too
            await asyncio.get_running_loop().run_in_executor(self.executor, self.traces.guard.load)
            await asyncio.get_running_loop().run_in_executor(self.executor, self.trace_reloader.start)
        if self.settings.prime_file is not None:
            await asyncio.get_running_loop().run_in_executor(self.executor, self._prime)
        self.responses.start()
        self.ready = True

    def _prime(self) -> None:
        """Read the configured sample of traffic through the cheap detectors (:meth:`Guard.prime`)."""
        log = logging.getLogger("aimds.server")
        path = self.settings.prime_file
        t0 = time.monotonic()
        try:
            texts = [str(r["text"]) for r in read_jsonl(path)] if path is not None else []
        except InputError as exc:  # a bad sample must not keep the service from starting
            log.warning("priming skipped", extra={"reason": str(exc)})
            return
        try:
            done = self.guard.prime(texts, seconds=self.settings.prime_seconds)
        except Exception as exc:  # priming is an optimisation: the service starts without it
            log.warning("priming failed", extra={"reason": f"{type(exc).__name__}: {exc}"})
            return
        log.info("primed", extra={"texts": done, "of": len(texts), "seconds": round(time.monotonic() - t0, 2)})

    def _trace_guard(self, names: Sequence[str]) -> Guard:
        """The guard agent-trace events are scanned with: the service's own, or one with only ``names``.

        Those detectors are built for that set (without the transformer the n-gram model uses the threshold
        tuned for it alone); the canary and memory detectors are the service's own instances (this
        deployment's key, the live attack memory). No session analysis: trace events are not chat turns.
        """
        if not names:
            return self.guard
        have = {d.name: d for d in self.guard.detectors}
        own = replace(self.guard.settings, detectors=tuple(names))
        fresh = Guard(own, policy=self.guard.policy).detectors if set(names) - {"canary", "memory"} else []
        detectors = [have[n] for n in names if n in ("canary", "memory")] + \
            [d for d in fresh if d.name not in ("canary", "memory")]
        return Guard(own, detectors=detectors, policy=self.guard.policy, analyzer=self.guard.analyzer)

    def close(self) -> None:
        """Drain response actions, flush the store (final signed checkpoint) and stop the scan threads."""
        self.ready = False
        self.reloader.stop()
        self.trace_reloader.stop()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.traces.close()
        self.responses.close(drain_s=2.0)
        self._background.shutdown(wait=True)
        self.memory.close()
        self.store.close()

    def quarantined(self, session_id: str | None) -> float | None:
        """Until when ``session_id`` is quarantined by a response action (None when it is not)."""
        return self.flags.quarantined_until(session_id) if session_id else None

    def enforce(self, verdict: Verdict, session_id: str | None) -> Verdict:
        """A quarantined session's requests are blocked whatever their own verdict."""
        until = self.quarantined(session_id)
        if until is None:
            return verdict
        return replace(verdict, action=Action.BLOCK, notes=(*verdict.notes, f"session quarantined until {until:.0f}"))

    def on_violations(self, violations: Sequence[Any], ids: Sequence[str], trace_id: str, event_id: str,
                      evidence: str = "") -> None:
        """Record agent-policy violations in the graph and run their response actions; violations marked
        ``escalate`` go to the review queue with their evidence. Never blocks."""
        for v, vid in zip(violations, ids, strict=True):
            if v.action == "escalate" and evidence:
                self._escalate(evidence, event_id, "tool_misuse",
                               f"policy {v.policy_id} violated at step {v.step}: {v.failed}"[:500])
            try:
                self.graph.record_violation(vid, policy_id=v.policy_id, severity=v.severity, action=v.action,
                                            step=v.step, failed=v.failed, session_id=trace_id, event_id=event_id)
                for action in self.responses.config.for_violation(v.severity, v.action, policy_id=v.policy_id,
                                                                  session_id=trace_id, event_id=vid):
                    self.responses.submit(action)
                    self.graph.record_response(action)
            except Exception:
                log.exception("violation response failed for %s", vid)

    def respond(self, stored: Sequence[Mapping[str, Any]]) -> None:
        """After events are durable: plan and submit response actions, record the attack graph, and send
        uncertain verdicts to the review queue. Never blocks."""
        for event in stored:
            if event.get("kind") != "event":
                continue
            pending = self._uncertain.pop(event.get("id", ""), None)
            if pending is not None:
                self._escalate(pending[0], event["id"], pending[1],
                               f"uncertain verdict: risk {event.get('risk')} in the review band")
            try:
                self.graph.record_event(event)
                for action in self.responses.config.for_event(event):
                    self.responses.submit(action)
                    self.graph.record_response(action)
            except Exception:  # responding must never fail the detection response
                log.exception("response planning failed for %s", event.get("id"))

    def check_size(self, text: str) -> None:
        """413 for text over the configured limit (before any work is queued)."""
        if len(text) > self.settings.guard.max_chars:
            raise APIError(413, "text_too_large",
                           f"text has {len(text)} characters; the limit is {self.settings.guard.max_chars}")

    async def scan(self, request: ScanRequest, on_stage: StageCallback | None = None) -> Verdict:
        """Scan with the request timeout: short texts on the event loop (no thread hand-off), others in a
        worker thread."""
        self.check_size(request.text)
        key = self.cache_key(request) if on_stage is None else None
        verdict = self.cache.get(key) if key is not None else None
        if verdict is None:
            if on_stage is None and len(request.text) <= self.settings.inline_scan_chars:
                verdict = self.guard.scan(request)
            else:
                verdicts = await self._run_scans([request], on_stage)
                verdict = verdicts[0]
            if key is not None:
                self.cache.put(key, verdict)
        verdict = self.enforce(verdict, request.session_id)
        self.metrics.observe_verdict(verdict)
        return verdict

    def cache_key(self, request: ScanRequest) -> bytes | None:
        """The verdict-cache key of ``request`` (None when the cache is off or the request is not cacheable)."""
        if not self.cache.enabled or not VerdictCache.cacheable(request):
            return None
        if self.memory.loaded:
            self.memory.refresh()  # feedback from any worker changes the key at once
        context = "|".join(f"{d.name}={d.version()}" for d in self.guard.detectors)
        return VerdictCache.key(request, f"{context}|policy={self.guard.policy.name}|memory={self.memory.head}")

    async def scan_many(self, requests: Sequence[ScanRequest]) -> list[Verdict]:
        """Scan several texts in one worker-thread hop (bounded by ``max_batch_chars``)."""
        total = 0
        for r in requests:
            self.check_size(r.text)
            total += len(r.text)
        if total > self.settings.max_batch_chars:
            raise APIError(413, "batch_too_large",
                           f"the batch has {total} characters; the limit is {self.settings.max_batch_chars}")
        verdicts = await self._run_scans(requests)
        verdicts = [self.enforce(v, r.session_id) for v, r in zip(verdicts, requests, strict=True)]
        for v in verdicts:
            self.metrics.observe_verdict(v)
        return verdicts

    async def _run_scans(self, requests: Sequence[ScanRequest], on_stage: StageCallback | None = None
                         ) -> list[Verdict]:
        """Admission control, then the scans in a worker thread; on timeout the remaining texts are skipped."""
        if self._queued >= self.settings.max_queued_scans:
            raise APIError(503, "overloaded", "too many scans waiting; retry later", {"Retry-After": "1"})
        cancelled = threading.Event()

        def work() -> list[Verdict]:
            out = []
            for r in requests:
                if cancelled.is_set():
                    raise TimeoutError
                out.append(self.guard.scan(r, on_stage=on_stage))
            return out

        self._queued += 1
        try:
            fut = asyncio.get_running_loop().run_in_executor(self.executor, work)
            return await asyncio.wait_for(fut, self.settings.request_timeout_s)
        except TimeoutError:
            cancelled.set()
            raise APIError(503, "timeout", f"detection took longer than {self.settings.request_timeout_s} s") from None
        finally:
            self._queued -= 1

    def event(self, request: ScanRequest, verdict: Verdict, principal: Principal, route: str) -> dict[str, Any]:
        """The event record for a detection (remembering uncertain ones for the review queue)."""
        record = make_event(request, verdict, key_id=principal.id, hash_key=self.hash_key,
                            store_raw_text=self.settings.store_raw_text, route=route)
        low, high = self.settings.review_band_low, self.settings.review_band_high
        if low < high and low <= verdict.risk < high and verdict.categories:
            if len(self._uncertain) > 10_000:  # events that never committed; bounded
                self._uncertain.clear()
            self._uncertain[record["id"]] = (request.text, str(verdict.categories[0]))
        return record

    def _escalate(self, text: str, event_id: str, category: str, note: str) -> None:
        """Queue a human review of ``text`` (in the background: embedding it takes milliseconds)."""
        def work() -> None:
            try:
                self.memory.submit(text, "attack", "escalation", category=category, note=note, event_id=event_id)
            except Exception:
                log.exception("escalation of %s failed", event_id)

        self._background.submit(work)

    async def record(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Append records and wait until they are durable (group commit)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[dict[str, Any]]] = loop.create_future()

        def done(stored: list[dict[str, Any]] | None, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_resolve, fut, stored, error)

        try:
            self.store.append(records, done)
        except StoreError as exc:
            raise APIError(503, "store_unavailable", str(exc)) from None
        self.metrics.store_queue.set(self.store.queue_depth)
        try:
            stored = await asyncio.wait_for(fut, self.settings.request_timeout_s)
        except TimeoutError:
            raise APIError(503, "store_timeout", "the event store did not commit in time") from None
        except StoreError as exc:
            raise APIError(503, "store_unavailable", str(exc)) from None
        self.respond(stored)
        return stored


def _resolve(fut: asyncio.Future[Any], stored: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(StoreError(f"write failed: {error}"))
    else:
        fut.set_result(stored)
