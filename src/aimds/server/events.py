"""Turning a verdict into a stored event: ids, hashes, redacted excerpt, never raw text unless configured."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from aimds.detect.evidence import excerpt
from aimds.store.sqlite import new_id
from aimds.types import ScanRequest, Verdict

EXCERPT_CHARS = 120


def input_digest(text: str, key: bytes) -> str:
    """Keyed hash of the input (HMAC-SHA-256 with the deployment's key, so short prompts cannot be guessed)."""
    return hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def make_event(request: ScanRequest, verdict: Verdict, *, key_id: str, hash_key: bytes, store_raw_text: bool,
               route: str) -> dict[str, Any]:
    """The event record for one detection (what the store chains)."""
    rule_ids = sorted({f"{f.detector}:{f.rule_id}" for f in verdict.findings})
    event: dict[str, Any] = {
        "id": new_id("evt"),
        "kind": "event",
        "ts": time.time(),
        "route": route,
        "key_id": key_id,
        "session_id": request.session_id,
        "user_id": request.user_id,
        "tenant": request.tenant,
        "role": str(request.role),
        "direction": str(request.direction),
        "action": str(verdict.action),
        "threat_action": str(verdict.threat_action or verdict.action),
        "risk": round(verdict.risk, 4),
        "categories": [str(c) for c in verdict.categories],
        "rules": rule_ids[:50],
        "latency_us": {k: round(v, 1) for k, v in verdict.latency_us.items()},
        "errors": [e.to_dict() for e in verdict.errors],
        "input_hmac": input_digest(request.text, hash_key),
        "chars": len(request.text),
        "excerpt": clean_text(excerpt(request.text, 0, min(len(request.text), EXCERPT_CHARS * 2), EXCERPT_CHARS)),
        "versions": dict(verdict.versions),
    }
    if store_raw_text:
        event["text"] = clean_text(request.text)
    return event


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced, so that it can be stored and serialised as UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
