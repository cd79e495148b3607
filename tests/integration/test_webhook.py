"""Webhook delivery against a real HTTP receiver on loopback: signatures, retries, timeouts, dead letter."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aimds.errors import ConfigError
from aimds.respond.actions import ActionKind, ResponseConfig
from aimds.respond.scheduler import Scheduler, default_handlers
from aimds.respond.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    DeliveryError,
    WebhookSender,
    sign,
    verify_signature,
)
from aimds.store.outbox import Outbox
from aimds.store.sqlite import SQLiteStore

SECRET = b"whsec_0123456789abcdef0123456789"


class Receiver:
    """A loopback webhook receiver that checks every signature; ``script`` lists statuses to answer."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.delay_s = 0.0
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = verify_signature(SECRET, self.headers.get(SIGNATURE_HEADER, ""), body)
                with receiver.lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.received.append({"valid": ok, "delivery": self.headers.get(DELIVERY_HEADER),
                                              "body": json.loads(body), "status": status})
                time.sleep(receiver.delay_s)
                self.send_response(status if ok else 401)
                if status == 302:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _sender(url: str, **kw: Any) -> WebhookSender:
    return WebhookSender(url, SECRET, **{"timeout_s": 2.0, "backoff_base_s": 0.01, "backoff_max_s": 0.02, **kw})


def test_signature_scheme() -> None:
    body = b'{"a":1}'
    header = sign(SECRET, body, ts=1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature(SECRET, header, body, now=1_700_000_100)
    assert not verify_signature(SECRET, header, b'{"a":2}', now=1_700_000_100)        # body changed
    assert not verify_signature(b"x" * 32, header, body, now=1_700_000_100)           # other secret
    assert not verify_signature(SECRET, header, body, now=1_700_000_000 + 301)        # replayed later
    rotated = f"{header},v1={'0' * 64}"
    assert verify_signature(SECRET, rotated, body, now=1_700_000_000)                 # any v1 may match
    assert not verify_signature(SECRET, "v1=abc", body) and not verify_signature(SECRET, "", body)


def test_signed_delivery_is_verified_by_the_receiver(receiver: Receiver) -> None:
    sender = _sender(receiver.url)
    assert sender.deliver({"type": "aimds.alert_webhook", "risk": 0.9}, "act_1") == 1
    [got] = receiver.received
    assert got["valid"] and got["delivery"] == "act_1" and got["body"] == {"risk": 0.9, "type": "aimds.alert_webhook"}
    forged = WebhookSender(receiver.url, b"not-the-right-secret-0000")
    with pytest.raises(DeliveryError) as err:
        forged.send(b"{}")
    assert err.value.status == 401 and not err.value.retryable


def test_retries_on_5xx_and_429_then_succeeds(receiver: Receiver) -> None:
    receiver.script = [500, 503, 429]
    delays: list[float] = []
    assert _sender(receiver.url).deliver({"n": 1}, "act_r", sleep=delays.append) == 4
    assert [r["status"] for r in receiver.received] == [500, 503, 429, 200]
    assert {r["delivery"] for r in receiver.received} == {"act_r"} and all(r["valid"] for r in receiver.received)
    assert len(delays) == 3 and all(0.005 <= d <= 0.02 for d in delays)


def test_client_errors_and_redirects_are_not_retried(receiver: Receiver) -> None:
    for status in (400, 302):
        receiver.script = [status]
        with pytest.raises(DeliveryError) as err:
            _sender(receiver.url).deliver({"n": 1}, sleep=lambda s: None)
        assert err.value.status == status and not err.value.retryable
    assert len(receiver.received) == 2                     # one request each; the redirect was not followed


def test_timeout_and_refused_connection_are_retryable(receiver: Receiver) -> None:
    receiver.delay_s = 0.5
    with pytest.raises(DeliveryError) as err:
        _sender(receiver.url, timeout_s=0.1).send(b"{}")
    assert err.value.retryable
    with socket.socket() as sock:                          # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DeliveryError) as err:
        _sender(f"http://127.0.0.1:{port}/hook", max_attempts=2).deliver({}, sleep=lambda s: None)
    assert err.value.retryable and "unreachable" in str(err.value)


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError):
        WebhookSender("ftp://x", SECRET)
    with pytest.raises(ConfigError):
        WebhookSender("http://x", b"short")


def test_scheduler_dead_letters_then_redelivers_after_retry(receiver: Receiver, tmp_path: Path) -> None:
    receiver.script = [500] * 3
    config = ResponseConfig.load()
    with SQLiteStore(tmp_path) as store:
        outbox = Outbox(store)
        s = Scheduler(default_handlers(webhook=_sender(receiver.url)), config=config, outbox=outbox,
                      max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02, sweep_s=0.05).start()
        try:
            action = config.make(ActionKind.ALERT_WEBHOOK, session_id="s1", event_id="evt_1",
                                 payload={"categories": ["jailbreak"]})
            s.submit(action)
            end = time.time() + 5
            while (row := outbox.get(action.id)) is None or row.status == "pending":
                assert time.time() < end
                time.sleep(0.01)
            assert row.status == "dead" and row.attempts == 3 and row.last_error == "webhook answered 500"
            assert s.stats()["failed"]["high"] == 1 and s.stats()["retries"] == 2
            assert outbox.retry_dead() == 1                   # what `aimds outbox retry` does
            while (row := outbox.get(action.id)) is not None and row.status != "delivered":
                assert time.time() < end
                time.sleep(0.01)                              # the next sweep takes it again
        finally:
            s.close()
    statuses = [r["status"] for r in receiver.received]
    assert statuses == [500, 500, 500, 200] and all(r["valid"] for r in receiver.received)
    body = receiver.received[-1]["body"]
    assert body["action_id"] == action.id and body["data"]["categories"] == ["jailbreak"]
    assert body["type"] == "aimds.alert_webhook" and body["attempt"] == 1
