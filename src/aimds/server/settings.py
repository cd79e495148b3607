"""Typed service settings, from ``AIMDS_*`` environment variables; insecure values are refused outside development."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from aimds.config import Settings
from aimds.errors import ConfigError
from aimds.store.sqlite import default_data_dir

ENVIRONMENTS = ("development", "production")


@dataclass(frozen=True)
class ServiceSettings:
    """How the service runs: where it stores, how it authenticates, which limits it enforces."""

    environment: str = "production"
    data_dir: Path = field(default_factory=default_data_dir)
    guard: Settings = field(default_factory=Settings)
    # authentication
    auth_disabled: bool = False                 # development only
    jwt_public_key: Path | None = None          # PEM (RS256/ES256)
    jwt_jwks_file: Path | None = None           # a JWKS document on disk
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_algorithms: tuple[str, ...] = ("RS256", "ES256")
    jwt_role_claim: str = "aimds_role"
    jwt_leeway_s: float = 30.0
    key_cache_s: float = 1.0                    # a revoked key stops working within this time on every worker
    public_docs: bool = False                   # /docs and /openapi.json without auth
    # abuse limits
    rate_limit_per_s: float = 500.0             # per key, token bucket (per worker process)
    rate_limit_burst: float = 1000.0
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch: int = 256
    request_timeout_s: float = 10.0
    # detection execution
    scan_threads: int = 2
    inline_scan_chars: int = 4000               # texts up to this length are scanned on the event loop (no hop)
    max_queued_scans: int = 256                 # admission control: more waiting scan jobs → 503 overloaded
    max_batch_chars: int = 1_000_000            # total characters of one /v1/detect/batch
    # logs
    access_log: bool = True
    log_level: str = "info"
    # response actions: signed alert webhooks (HMAC-SHA-256, see aimds.respond.webhook)
    alert_webhook_url: str | None = None
    alert_webhook_secret: str | None = None
    # human review: verdicts with risk in [low, high) go to the review queue (low == high: off)
    review_band_low: float = 0.5
    review_band_high: float = 0.75
    # agent traces: what confirms a step refused by require_confirmation. token: only the single-use token
    # the refusal returned, re-sent with the same action (bound to trace, action and expiry); legacy: also
    # bare confirmed/approved flags and approval events (runtimes that cannot carry a token)
    confirmations: str = "token"
    confirmation_ttl_s: float = 900.0
    # agent traces: the detectors events are scanned with (empty: the service's own). The fast profile
    # (obfuscation,signatures,pii,secrets,canary,exfil_output,classifier) keeps a 2 KB tool result at a few
    # ms; without the transformer fewer injected pages are flagged (README, "Agents"): policies still apply
    trace_detectors: tuple[str, ...] = ()
    # deferred: with trace_detectors set, content an agent reads is also scanned by the full pipeline in the
    # background, and the trace's next non-read event (the action) waits for it (at most trace_deep_wait_s,
    # then 503 scan_pending); inline: trace events get the trace detectors' verdict only
    trace_deep_scan: str = "inline"
    trace_deep_wait_s: float = 5.0
    # multi-turn analysis over sessions kept in the store
    sessions: bool = True
    # the attack memory (exemplars from feedback) as a detector; off: feedback is stored but not used
    memory: bool = True
    # learned classifier versions (aimds learn): how often each worker checks the store's active version
    model_poll_s: float = 1.0
    # verdict cache for exact duplicates (aimds.server.cache): 0 = off; per worker, bounded LRU
    cache_ttl_s: float = 0.0
    cache_max_entries: int = 4096
    # start-up priming: before /readyz turns ready, read this JSONL's texts (a sample of the deployment's own
    # traffic) through the cheap detectors for at most prime_seconds, so the signature automata have built
    # their states (Guard.prime; README, "Varied text")
    prime_file: Path | None = None
    prime_seconds: float = 30.0
    # event store
    store_raw_text: bool = False
    retention_days: float = 30.0
    checkpoint_every: int = 1000
    synchronous: str = "FULL"
    signing_key: Path | None = None

    def validate(self) -> None:
        """Raise ConfigError for values that cannot work or are insecure outside development."""
        if self.environment not in ENVIRONMENTS:
            raise ConfigError(f"environment must be one of {ENVIRONMENTS}, got {self.environment!r}")
        if self.rate_limit_per_s < 0 or self.rate_limit_burst < 0:
            raise ConfigError("rate limits must be non-negative")
        if self.max_body_bytes <= 0 or self.max_batch <= 0 or self.request_timeout_s <= 0:
            raise ConfigError("body, batch and timeout limits must be positive")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError("log_level must be debug, info, warning or error")
        if self.max_queued_scans <= 0 or self.max_batch_chars <= 0 or self.inline_scan_chars < 0:
            raise ConfigError("max_queued_scans and max_batch_chars must be positive, inline_scan_chars ≥ 0")
        if self.scan_threads <= 0:
            raise ConfigError("scan_threads must be positive")
        if self.model_poll_s <= 0 or self.cache_ttl_s < 0 or self.cache_max_entries <= 0:
            raise ConfigError("model_poll_s and cache_max_entries must be positive, cache_ttl_s non-negative")
        if self.retention_days <= 0:
            raise ConfigError("retention_days must be positive")
        if not 0 < self.prime_seconds <= 3600:
            raise ConfigError("prime_seconds must be in (0, 3600]")
        if self.prime_file is not None and not Path(self.prime_file).is_file():
            raise ConfigError(f"prime_file {self.prime_file} is not a readable file")
        if self.synchronous.upper() not in ("FULL", "EXTRA", "NORMAL"):
            raise ConfigError("synchronous must be FULL, EXTRA or NORMAL")
        if self.jwt_public_key and self.jwt_jwks_file:
            raise ConfigError("configure either jwt_public_key or jwt_jwks_file, not both")
        bad = [a for a in self.jwt_algorithms if a not in ("RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA")]
        if bad:
            raise ConfigError(f"unsupported JWT algorithms {bad}: only asymmetric algorithms are accepted")
        if not 0 <= self.review_band_low <= self.review_band_high <= 1:
            raise ConfigError("review band must satisfy 0 <= review_band_low <= review_band_high <= 1")
        if self.confirmations not in ("token", "legacy"):
            raise ConfigError(f"confirmations must be token or legacy, got {self.confirmations!r}")
        if not 0 < self.confirmation_ttl_s <= 86_400:
            raise ConfigError("confirmation_ttl_s must be in (0, 86400]")
        if self.trace_deep_scan not in ("inline", "deferred"):
            raise ConfigError(f"trace_deep_scan must be inline or deferred, got {self.trace_deep_scan!r}")
        if self.trace_deep_scan == "deferred" and not self.trace_detectors:
            raise ConfigError("trace_deep_scan=deferred needs trace_detectors (the cheap subset scanned inline)")
        if not 0 < self.trace_deep_wait_s <= 60:
            raise ConfigError("trace_deep_wait_s must be in (0, 60]")
        if self.alert_webhook_url and len(self.alert_webhook_secret or "") < 16:
            raise ConfigError("alert_webhook_url needs alert_webhook_secret of at least 16 characters")
        if self.environment == "development":
            return
        insecure = []
        if self.auth_disabled:
            insecure.append("auth_disabled")
        if self.rate_limit_per_s == 0:
            insecure.append("rate_limit_per_s=0 (no rate limit)")
        if (self.jwt_public_key or self.jwt_jwks_file) and not (self.jwt_issuer and self.jwt_audience):
            insecure.append("JWT without jwt_issuer and jwt_audience")
        if self.synchronous.upper() == "NORMAL":
            insecure.append("synchronous=NORMAL (acknowledged events may be lost on power failure)")
        if self.data_dir.exists() and self.data_dir.stat().st_mode & stat.S_IWOTH:
            insecure.append(f"data_dir {self.data_dir} is world-writable")
        if insecure:
            raise ConfigError("refusing insecure settings outside development (set AIMDS_ENV=development to allow): "
                              + "; ".join(insecure))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServiceSettings:
        """Settings from ``AIMDS_*`` variables (names: ``AIMDS_`` + the field name in upper case)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "guard":
                continue
            raw = env.get("AIMDS_" + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw, getattr(cls(), f.name) if f.name != "data_dir" else Path())
        values["guard"] = Settings.from_env(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            settings = cls(**values)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None
        settings.validate()
        return settings

    def to_env(self) -> dict[str, str]:
        """The ``AIMDS_*`` variables that reproduce these settings (to hand them to worker processes)."""
        out = {}
        for f in fields(self):
            if f.name == "guard":
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool):
                out["AIMDS_" + f.name.upper()] = "1" if value else "0"
            elif isinstance(value, tuple):
                out["AIMDS_" + f.name.upper()] = ",".join(value)
            else:
                out["AIMDS_" + f.name.upper()] = str(value)
        return out

    def public_view(self) -> dict[str, Any]:
        """Settings safe to show an admin (no key material)."""
        return {f.name: (str(getattr(self, f.name)) if isinstance(getattr(self, f.name), Path)
                         else list(self.guard.detectors) if f.name == "guard" else getattr(self, f.name))
                for f in fields(self) if f.name not in ("signing_key", "alert_webhook_secret")}

    def with_(self, **changes: Any) -> ServiceSettings:
        """A validated copy with some fields changed."""
        new = replace(self, **changes)
        new.validate()
        return new


def _parse(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(x.strip() for x in raw.split(",") if x.strip())
        if isinstance(default, Path) or name in ("jwt_public_key", "jwt_jwks_file", "signing_key", "data_dir",
                                                 "prime_file"):
            return Path(raw)
        return raw
    except ValueError:
        raise ConfigError(f"AIMDS_{name.upper()}: cannot parse {raw!r}") from None
