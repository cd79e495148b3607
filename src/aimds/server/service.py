"""The service's shared state: guard, store, auth, limits and metrics, and the async bridges between them."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aimds.pipeline import Guard, StageCallback
from aimds.server.auth import Authenticator, Principal
from aimds.server.errors import APIError
from aimds.server.events import make_event
from aimds.server.metrics import Metrics
from aimds.server.ratelimit import RateLimiter
from aimds.server.settings import ServiceSettings
from aimds.store.sessions import SQLiteSessionStore
from aimds.store.sqlite import SQLiteStore, StoreError
from aimds.store.vault import SQLiteVault
from aimds.types import ScanRequest, Verdict

log = logging.getLogger("aimds.server")
HMAC_KEY_FILE = "input_hmac.key"


def load_hash_key(data_dir: Path) -> bytes:
    """The deployment's key for input hashes (created once, mode 0600)."""
    path = data_dir / HMAC_KEY_FILE
    if path.exists():
        return path.read_bytes()
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker created it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class Service:
    """Everything a request handler needs, created once per worker process."""

    def __init__(self, settings: ServiceSettings, guard: Guard | None = None,
                 store: SQLiteStore | None = None) -> None:
        settings.validate()
        self.settings = settings
        self.store = store or SQLiteStore(settings.data_dir, checkpoint_every=settings.checkpoint_every,
                                          synchronous=settings.synchronous, signing_key=settings.signing_key)
        self.hash_key = load_hash_key(settings.data_dir)
        base = guard or Guard(settings.guard)
        self.sessions = SQLiteSessionStore(self.store, self.hash_key) if settings.sessions else None
        # the same detectors and policy, with session analysis over the shared store
        self.guard = Guard(base.settings, detectors=base.detectors, policy=base.policy, sessions=self.sessions,
                           analyzer=base.analyzer) if self.sessions is not None else base
        self.metrics = Metrics()
        self.store.on_commit = self.metrics.observe_commit
        self.vault = SQLiteVault(self.store)
        self.auth = Authenticator(settings, self.store)
        self.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        self.executor = ThreadPoolExecutor(settings.scan_threads, thread_name_prefix="aimds-scan")
        self.ready = False

    async def start(self) -> None:
        """Load models and rules (off the event loop)."""
        await asyncio.get_running_loop().run_in_executor(self.executor, self.guard.load)
        self.ready = True

    def close(self) -> None:
        """Flush the store (final signed checkpoint) and stop the scan threads."""
        self.ready = False
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    def check_size(self, text: str) -> None:
        """413 for text over the configured limit (before any work is queued)."""
        if len(text) > self.settings.guard.max_chars:
            raise APIError(413, "text_too_large",
                           f"text has {len(text)} characters; the limit is {self.settings.guard.max_chars}")

    async def scan(self, request: ScanRequest, on_stage: StageCallback | None = None) -> Verdict:
        """Scan in a worker thread with the request timeout."""
        self.check_size(request.text)
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self.executor, lambda: self.guard.scan(request, on_stage=on_stage))
        try:
            verdict = await asyncio.wait_for(fut, self.settings.request_timeout_s)
        except TimeoutError:
            raise APIError(503, "timeout", f"detection took longer than {self.settings.request_timeout_s} s") from None
        self.metrics.observe_verdict(verdict)
        return verdict

    async def scan_many(self, requests: Sequence[ScanRequest]) -> list[Verdict]:
        """Scan several texts in one worker-thread hop."""
        for r in requests:
            self.check_size(r.text)
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self.executor, lambda: [self.guard.scan(r) for r in requests])
        try:
            verdicts = await asyncio.wait_for(fut, self.settings.request_timeout_s)
        except TimeoutError:
            raise APIError(503, "timeout", f"detection took longer than {self.settings.request_timeout_s} s") from None
        for v in verdicts:
            self.metrics.observe_verdict(v)
        return verdicts

    def event(self, request: ScanRequest, verdict: Verdict, principal: Principal, route: str) -> dict[str, Any]:
        """The event record for a detection."""
        return make_event(request, verdict, key_id=principal.id, hash_key=self.hash_key,
                          store_raw_text=self.settings.store_raw_text, route=route)

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
            return await asyncio.wait_for(fut, self.settings.request_timeout_s)
        except TimeoutError:
            raise APIError(503, "store_timeout", "the event store did not commit in time") from None
        except StoreError as exc:
            raise APIError(503, "store_unavailable", str(exc)) from None


def _resolve(fut: asyncio.Future[Any], stored: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(StoreError(f"write failed: {error}"))
    else:
        fut.set_result(stored)
