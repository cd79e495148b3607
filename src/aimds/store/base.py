"""The storage interface the service uses; SQLite is the embedded default, PostgreSQL can follow."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aimds.store.audit import VerifyReport

ROLES = ("detector", "analyst", "admin")
#: Commit callback: (stored records or None, error or None).
Done = Callable[[list[dict[str, Any]] | None, BaseException | None], None]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key (the secret itself is never stored, only its SHA-256)."""

    id: str
    role: str
    name: str
    created: float
    revoked: float | None
    secret_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict without the hash."""
        return {"id": self.id, "role": self.role, "name": self.name, "created": self.created,
                "revoked": self.revoked}


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for listing events; results are newest first, ``cursor`` is the last seen sequence number."""

    since: float | None = None
    until: float | None = None
    action: str | None = None
    category: str | None = None
    session_id: str | None = None
    cursor: int | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Page:
    """One page of events and the cursor of the next page (None at the end)."""

    items: list[dict[str, Any]]
    next_cursor: int | None


class EventStore(ABC):
    """Durable, chained storage of events, admin actions and API keys."""

    @abstractmethod
    def append(self, records: Sequence[Mapping[str, Any]], done: Done) -> None:
        """Queue records (events or admin actions) for a group commit; ``done`` is called once they are durable."""

    @abstractmethod
    def append_sync(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Append and wait until durable; returns the stored records (with ``seq``)."""

    @abstractmethod
    def get_event(self, event_id: str) -> dict[str, Any] | None:
        """One stored record by id."""

    @abstractmethod
    def list_events(self, query: EventQuery) -> Page:
        """Events matching ``query``, newest first."""

    @abstractmethod
    def purge(self, older_than: float, actor: str) -> int:
        """Delete records older than the ``older_than`` timestamp, keeping the chain verifiable."""

    @abstractmethod
    def verify(self) -> VerifyReport:
        """Verify the audit chain and its signed checkpoints."""

    @abstractmethod
    def checkpoint(self) -> None:
        """Sign the current head of the chain now."""

    @abstractmethod
    def create_key(self, role: str, name: str, actor: str) -> tuple[ApiKey, str]:
        """Create an API key; returns the record and the secret key string (shown once)."""

    @abstractmethod
    def get_key(self, key_id: str) -> ApiKey | None:
        """A key by id (including revoked ones)."""

    @abstractmethod
    def list_keys(self) -> list[ApiKey]:
        """All keys."""

    @abstractmethod
    def revoke_key(self, key_id: str, actor: str) -> bool:
        """Revoke a key; False when there is no such active key."""

    @abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot serve reads and writes."""

    @abstractmethod
    def close(self) -> None:
        """Flush pending writes, sign a final checkpoint and close."""
