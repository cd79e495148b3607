"""Webhook delivery: a signed JSON POST with a timeout, retried with exponential backoff and jitter.

Signature (the scheme Stripe uses). Each request carries::

    X-AIMDS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256(secret, "<t>.<raw body>")>
    X-AIMDS-Delivery:  <action id>   (the same on every retry: receivers deduplicate on it)

A receiver recomputes the HMAC over the timestamp, a dot and the raw request body bytes, compares it in
constant time with every ``v1`` value in the header (several appear while a secret is rotated), and
rejects timestamps more than a few minutes old (replay). :func:`verify_signature` does exactly that.

Delivery is at least once: a 2xx answer is success; timeouts, connection errors, 408, 425, 429 and 5xx
are retried (``Retry-After`` is honoured as a lower bound); other 4xx answers are permanent failures.
Redirects are not followed and environment proxies are ignored unless asked for.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from aimds.errors import AIMDSError, ConfigError

SIGNATURE_HEADER: Final = "X-AIMDS-Signature"
DELIVERY_HEADER: Final = "X-AIMDS-Delivery"
_RETRY_STATUSES: Final = frozenset({408, 425, 429})


class DeliveryError(AIMDSError):
    """A webhook attempt failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s


def sign(secret: bytes, body: bytes, ts: int | None = None) -> str:
    """The ``X-AIMDS-Signature`` header value for ``body`` at ``ts`` (default: now)."""
    t = int(time.time()) if ts is None else int(ts)
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(secret: bytes, header: str, body: bytes, *, tolerance_s: float = 300.0,
                     now: float | None = None) -> bool:
    """True when ``header`` carries a valid ``v1`` signature of ``body`` made within ``tolerance_s``."""
    ts: int | None = None
    sigs: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            ts = int(value)
        elif key == "v1":
            sigs.append(value)
    if ts is None or not sigs:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    expected = hmac.new(secret, f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in sigs)


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry ``attempt`` (1 = first retry): full jitter, ``U(0, min(cap, base·2^(n-1)))``,
    never below ``base_s / 2`` so that retries do not hammer a receiver that is down."""
    ceiling = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    return max(base_s / 2, ceiling * rng())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class WebhookSender:
    """POSTs signed JSON to one URL.

    ``send(body, delivery_id)`` makes one attempt (raising :class:`DeliveryError`); ``deliver`` retries
    with backoff up to ``max_attempts`` in the calling thread. The scheduler uses ``send`` and keeps the
    retry schedule itself (persisted in the outbox), so no thread sleeps through a backoff.
    """

    url: str
    secret: bytes
    timeout_s: float = 5.0
    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_max_s: float = 300.0
    use_env_proxy: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError("webhook url must be http:// or https://")
        if isinstance(self.secret, str):
            self.secret = self.secret.encode("utf-8")
        if len(self.secret) < 16:
            raise ConfigError("webhook secret must be at least 16 bytes")
        if self.timeout_s <= 0 or self.max_attempts < 1:
            raise ConfigError("webhook timeout_s must be positive and max_attempts at least 1")
        handlers: list[Any] = [_NoRedirect()]
        if not self.use_env_proxy:
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def encode(self, payload: Mapping[str, Any]) -> bytes:
        """The request body for ``payload`` (compact JSON, keys sorted)."""
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)

    def send(self, body: bytes, delivery_id: str = "") -> int:
        """One attempt; the HTTP status on 2xx, else :class:`DeliveryError`."""
        headers = {"Content-Type": "application/json", "User-Agent": "aimds-webhook/1",
                   SIGNATURE_HEADER: sign(self.secret, body), **self.headers}
        if delivery_id:
            headers[DELIVERY_HEADER] = delivery_id
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                resp.read(65536)
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            retryable = status >= 500 or status in _RETRY_STATUSES
            raise DeliveryError(f"webhook answered {status}", retryable=retryable, status=status,
                                retry_after_s=retry_after) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"webhook unreachable: {reason}", retryable=True) from None

    def deliver(self, payload: Mapping[str, Any], delivery_id: str = "",
                sleep: Callable[[float], None] = time.sleep) -> int:
        """Send with retries in this thread; the number of attempts made on success, else the last error."""
        body = self.encode(payload)
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.send(body, delivery_id)
                return attempt
            except DeliveryError as exc:
                if not exc.retryable or attempt == self.max_attempts:
                    raise
                sleep(self.retry_delay(attempt, exc))
        raise AssertionError("unreachable")  # pragma: no cover

    def retry_delay(self, attempt: int, error: DeliveryError | None = None) -> float:
        """Backoff before retry ``attempt`` (1-based), at least the receiver's ``Retry-After``."""
        delay = backoff_delay(attempt, base_s=self.backoff_base_s, cap_s=self.backoff_max_s)
        if error is not None and error.retry_after_s is not None:
            delay = max(delay, min(error.retry_after_s, self.backoff_max_s))
        return delay


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
