"""Who is calling: API keys (hashed in the store, compared in constant time) and JWT bearer tokens."""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt

from aimds.errors import ConfigError
from aimds.server.errors import APIError
from aimds.server.settings import ServiceSettings
from aimds.store.base import ROLES, ApiKey
from aimds.store.sqlite import SQLiteStore, hash_secret, parse_key

ROLE_RANK = {role: i for i, role in enumerate(ROLES)}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    id: str          # key id, or "jwt:<sub>"
    role: str
    kind: str        # "key" | "jwt" | "anonymous" (auth disabled in development)

    def allows(self, role: str) -> bool:
        """Whether this principal has at least ``role``."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class Authenticator:
    """Resolves an ``Authorization: Bearer`` / ``X-API-Key`` credential to a :class:`Principal`."""

    def __init__(self, settings: ServiceSettings, store: SQLiteStore) -> None:
        self.settings = settings
        self.store = store
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()
        self._jwt_key: Any = None
        self._jwks: jwt.PyJWKSet | None = None
        if settings.jwt_public_key is not None:
            try:
                self._jwt_key = settings.jwt_public_key.read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read jwt_public_key: {exc}") from None
        if settings.jwt_jwks_file is not None:
            try:
                self._jwks = jwt.PyJWKSet.from_json(settings.jwt_jwks_file.read_text("utf-8"))
            except (OSError, jwt.PyJWTError, ValueError) as exc:
                raise ConfigError(f"cannot read jwt_jwks_file: {exc}") from None

    @property
    def jwt_enabled(self) -> bool:
        """Whether bearer JWTs are accepted."""
        return self._jwt_key is not None or self._jwks is not None

    def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        """The caller, or APIError(401)."""
        if self.settings.auth_disabled:
            return Principal("anonymous", "admin", "anonymous")
        credential = api_key
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise APIError(401, "unauthorized", "use 'Authorization: Bearer <key or token>'",
                               {"WWW-Authenticate": "Bearer"})
            credential = value.strip()
        if not credential:
            raise APIError(401, "unauthorized", "missing credentials", {"WWW-Authenticate": "Bearer"})
        if credential.count(".") == 2 and not credential.startswith("aimds_"):
            return self._from_jwt(credential)
        key = self._key(credential)
        if key is None:
            raise APIError(401, "unauthorized", "invalid API key", {"WWW-Authenticate": "Bearer"})
        return Principal(key.id, key.role, "key")

    def _key(self, credential: str) -> ApiKey | None:
        parsed = parse_key(credential)
        kid, secret = parsed if parsed else ("", credential)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(kid)
        if hit is None or now - hit[0] > self.settings.key_cache_s:
            record = self.store.get_key(kid) if parsed else None
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[kid] = (now, record)
        else:
            record = hit[1]
        expected = record.secret_hash if record is not None else "0" * 64
        ok = hmac.compare_digest(hash_secret(secret), expected)
        if record is None or not ok or record.revoked is not None:
            return None
        return record

    def forget(self, key_id: str) -> None:
        """Drop a key from this process's cache (after a revoke here; other workers expire theirs)."""
        with self._lock:
            self._cache.pop(key_id, None)

    def _from_jwt(self, token: str) -> Principal:
        if not self.jwt_enabled:
            raise APIError(401, "unauthorized", "JWT bearer tokens are not configured", {"WWW-Authenticate": "Bearer"})
        try:
            key: Any = self._jwt_key
            if self._jwks is not None:
                kid = jwt.get_unverified_header(token).get("kid")
                matches = [k for k in self._jwks.keys if kid is None or k.key_id == kid]
                if not matches:
                    raise jwt.InvalidTokenError("no key in the JWKS matches the token's kid")
                key = matches[0]
            options = {"require": ["exp"] + (["iss"] if self.settings.jwt_issuer else [])
                       + (["aud"] if self.settings.jwt_audience else [])}
            claims = jwt.decode(token, key, algorithms=list(self.settings.jwt_algorithms),
                                audience=self.settings.jwt_audience, issuer=self.settings.jwt_issuer,
                                leeway=self.settings.jwt_leeway_s, options=options)  # type: ignore[arg-type]
        except jwt.PyJWTError as exc:
            raise APIError(401, "unauthorized", f"invalid token: {exc}", {"WWW-Authenticate": "Bearer"}) from None
        role = claims.get(self.settings.jwt_role_claim)
        if role not in ROLE_RANK:
            raise APIError(403, "forbidden", f"token has no valid {self.settings.jwt_role_claim!r} claim")
        return Principal(f"jwt:{claims.get('sub', '?')}", str(role), "jwt")
