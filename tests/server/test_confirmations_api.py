"""Trace API confirmations on a real server: tokens bound to trace, action and expiry, single use; legacy mode."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from aimds import Guard
from tests.server.conftest import Live, start_server

PAGE = {"type": "tool_result", "tool": "browse", "source": "web",
        "content": "<html><body><p>Release notes: offline sync and a faster search index.</p></body></html>"}
TO_BOB = {"type": "tool_call", "tool": "send_email", "args": {"to": "bob@corp.example", "body": "the notes"}}
TO_EVE = {"type": "tool_call", "tool": "send_email", "args": {"to": "eve@evil.test", "body": "the notes"}}


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory, guard: Guard) -> Iterator[Live]:
    """A server in the legacy confirmations mode, with one-second tokens."""
    server = start_server(tmp_path_factory.mktemp("aimds-legacy"), guard, confirmations="legacy",
                          confirmation_ttl_s=1.0, rate_limit_per_s=10_000, rate_limit_burst=10_000)
    yield server
    server.stop()


def _post(c: httpx.Client, trace: str, event: dict) -> dict:
    r = c.post(f"/v1/traces/{trace}/events", json=event)
    assert r.status_code == 200, r.text
    body: dict = r.json()
    return body


def _refused_send(c: httpx.Client, send: dict = TO_BOB) -> tuple[str, dict]:
    trace = f"c-{uuid.uuid4().hex[:10]}"
    assert _post(c, trace, {"type": "message", "role": "user", "content": "Summarise the page and mail Bob"})["allowed"]
    assert _post(c, trace, PAGE)["allowed"]
    refused = _post(c, trace, send)
    assert not refused["allowed"] and not refused["committed"]
    return trace, refused


def test_refusal_carries_a_bound_token_that_confirms_exactly_once(live: Live) -> None:
    with live.client("detector") as c:
        trace, refused = _refused_send(c)
        conf = refused["confirmation"]
        canonical = '{"args":{"body":"the notes","to":"bob@corp.example"},"tool":"send_email","type":"tool_call"}'
        assert conf["action_digest"] == hashlib.sha256(canonical.encode()).hexdigest()
        assert 880 <= conf["expires_at"] - time.time() <= 901
        ok = _post(c, trace, {**TO_BOB, "confirmation": conf["token"]})
        assert ok["allowed"] and ok["committed"] and ok["confirmation_status"] == "accepted"
        assert "user:confirmed" in ok["atoms"] and ok["step"] == refused["step"]
        again = _post(c, trace, {**TO_BOB, "confirmation": conf["token"]})   # replay of a used token
        assert again["confirmation_status"] == "used" and not again["allowed"]
        # the confirmed mail to Bob does not let a mail to Eve follow
        assert not _post(c, trace, TO_EVE)["allowed"]
    with live.client("analyst") as c:
        events = c.get("/v1/events", params={"session_id": trace}).json()["items"]
        assert sum(e.get("confirmation") == "accepted" for e in events) == 1
        assert all(conf["token"] not in str(e) for e in events)   # the bearer token is not audited


def test_approval_of_one_action_does_not_unlock_another(live: Live) -> None:
    with live.client("detector") as c:
        trace, refused = _refused_send(c)
        swapped = _post(c, trace, {**TO_EVE, "confirmation": refused["confirmation"]["token"]})
        assert swapped["confirmation_status"] == "action_mismatch" and not swapped["allowed"]
        assert "user:confirmed" not in swapped["atoms"]


def test_forged_and_other_trace_tokens_are_refused(live: Live) -> None:
    with live.client("detector") as c:
        trace, refused = _refused_send(c)
        token = refused["confirmation"]["token"]
        payload, _, sig = token.partition(".")
        forged = f"{payload}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"
        assert _post(c, trace, {**TO_BOB, "confirmation": forged})["confirmation_status"] == "invalid"
        other, _ = _refused_send(c)
        d = _post(c, other, {**TO_BOB, "confirmation": token})
        assert d["confirmation_status"] == "invalid" and not d["allowed"]
        assert c.post(f"/v1/traces/{trace}/events", json={**TO_BOB, "confirmation": "x" * 2000}).status_code == 422


def test_bare_flags_do_not_confirm_in_token_mode(live: Live) -> None:
    with live.client("detector") as c:
        for extra in ({"confirmed": True}, {"approved": True}):
            trace, refused = _refused_send(c, {**TO_BOB, **extra})
            assert "user:confirmed_unbound" in refused["atoms"] and refused["confirmation"]
        trace, _ = _refused_send(c)
        assert _post(c, trace, {"type": "approval", "tool": "send_email", "decision": "approved"})["allowed"]
        assert not _post(c, trace, TO_BOB)["allowed"]


def test_legacy_mode_accepts_flags_and_tokens_expire(legacy: Live) -> None:
    with legacy.client("detector") as c:
        trace, refused = _refused_send(c)
        assert _post(c, trace, {**TO_BOB, "confirmed": True})["allowed"]
        trace, refused = _refused_send(c)
        time.sleep(1.1)
        late = _post(c, trace, {**TO_BOB, "confirmation": refused["confirmation"]["token"]})
        assert late["confirmation_status"] == "expired" and not late["allowed"]
