"""The redaction vault in the service's SQLite file: placeholder → value per scope, encrypted at rest.

Implements :class:`aimds.respond.redact.Vault`. Values are personal data and secrets, so each scope's
mapping is sealed with AES-256-GCM under a key kept in the data directory (``vault.key``, mode 0600),
bound to its scope id, and owned by the principal that created it (only that principal, or an admin,
may restore from it). Expired scopes are deleted lazily.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aimds.respond.redact import DEFAULT_TTL_S
from aimds.store.keyfile import load_or_create
from aimds.store.sqlite import SQLiteStore

KEY_FILE = "vault.key"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vault (
    scope TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL,
    sealed BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS vault_expires ON vault(expires);
"""


def _load_key(data_dir: Path) -> bytes:
    return load_or_create(data_dir / KEY_FILE, lambda: AESGCM.generate_key(bit_length=256))


class SQLiteVault:
    """A durable, encrypted :class:`~aimds.respond.redact.Vault` shared by all worker processes."""

    def __init__(self, store: SQLiteStore, owner: str = "library") -> None:
        self.store = store
        self.owner = owner
        self._aead = AESGCM(_load_key(store.data_dir))
        store.ensure_schema(_SCHEMA)

    def for_owner(self, owner: str) -> SQLiteVault:
        """The same vault acting for another principal."""
        other = object.__new__(SQLiteVault)
        other.store, other.owner, other._aead = self.store, owner, self._aead
        return other

    def owner_of(self, scope: str) -> str | None:
        """Who created ``scope`` (None when unknown or expired)."""
        row = self.store.reader().execute("SELECT owner, expires FROM vault WHERE scope = ?", (scope,)).fetchone()
        return None if row is None or row[1] <= time.time() else str(row[0])

    def get(self, scope: str) -> dict[str, str]:
        """The scope's mapping, if it exists, has not expired and belongs to this owner."""
        row = self.store.reader().execute("SELECT owner, expires, sealed FROM vault WHERE scope = ?",
                                          (scope,)).fetchone()
        if row is None or row[1] <= time.time() or row[0] != self.owner:
            return {}
        sealed = bytes(row[2])
        try:
            plain = self._aead.decrypt(sealed[:12], sealed[12:], scope.encode())
        except InvalidTag:
            return {}
        return dict(orjson.loads(plain))

    def put(self, scope: str, mapping: Mapping[str, str], ttl_s: float = DEFAULT_TTL_S) -> None:
        """Seal and store the mapping (durable when this returns)."""
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, orjson.dumps(dict(mapping)), scope.encode())
        now = time.time()
        owner = self.owner

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cur = conn.execute("SELECT owner FROM vault WHERE scope = ? AND expires > ?", (scope, now)).fetchone()
            if cur is not None and cur[0] != owner:
                raise PermissionError("this redaction scope belongs to another principal")
            conn.execute("INSERT OR REPLACE INTO vault(scope, owner, expires, sealed) VALUES (?, ?, ?, ?)",
                         (scope, owner, now + ttl_s, sealed))
            conn.execute("DELETE FROM vault WHERE expires <= ?", (now,))
            return []

        self.store.append_sync([], prepare=prepare)
