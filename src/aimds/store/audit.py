"""Tamper-evident audit chain: hash-chained records and Ed25519-signed checkpoints.

Every stored record (detection events and admin actions) is chained::

    hash_i = SHA-256(hash_{i-1} ‖ canonical_json(record_i))      (hash_0 = 64 × "0")

where ``record_i`` includes its own sequence number, so a record moved to another position no longer
hashes the same. Every ``checkpoint_every`` records (and on shutdown) the head ``(seq, hash)`` is signed
with an Ed25519 key. :func:`verify_chain` walks the chain and reports the first position where it
breaks: an edited, deleted, inserted or reordered record, or a tail truncated past a signed checkpoint.
A purge (retention) deletes a prefix and leaves a chained ``purge`` record naming the first kept
sequence number and the hash before it, so a purged prefix verifies and a deleted one does not.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aimds.errors import ConfigError

GENESIS = "0" * 64
KEY_FILE = "audit_ed25519.pem"
PUBLIC_KEY_FILE = "audit_ed25519.pub.pem"


def canonical_json(record: Mapping[str, Any]) -> bytes:
    """Canonical JSON: UTF-8, keys sorted, no whitespace (what the chain hashes and signs)."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, body: bytes) -> str:
    """``SHA-256(prev_hash ‖ body)`` as hex, where ``prev_hash`` is the previous record's hex hash."""
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def checkpoint_message(seq: int, head_hash: str, ts: float) -> bytes:
    """The bytes a checkpoint signs."""
    return canonical_json({"seq": seq, "hash": head_hash, "ts": round(ts, 6)})


@dataclass(frozen=True, slots=True)
class Signer:
    """An Ed25519 key pair used to sign checkpoints."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The verifying half."""
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        """First 16 hex digits of SHA-256 of the raw public key."""
        return key_id(self.public_key)

    def sign(self, message: bytes) -> str:
        """Hex signature of ``message``."""
        return self.private_key.sign(message).hex()

    @classmethod
    def load_or_create(cls, data_dir: Path, key_path: Path | None = None) -> Signer:
        """Load the signing key (``key_path`` or ``data_dir/audit_ed25519.pem``), creating it (mode 0600) if absent."""
        path = key_path or data_dir / KEY_FILE
        if path.exists():
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"cannot read audit signing key {path}: {exc}") from None
            if not isinstance(key, Ed25519PrivateKey):
                raise ConfigError(f"audit signing key {path} is not an Ed25519 key")
            return cls(key)
        if key_path is not None:
            raise ConfigError(f"audit signing key {path} does not exist")
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        (data_dir / PUBLIC_KEY_FILE).write_bytes(public_pem(key.public_key()))
        return cls(key)


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short identifier of a public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    """PEM (SubjectPublicKeyInfo) of a public key."""
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Parse a PEM Ed25519 public key (ConfigError if it is not one)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ConfigError(f"cannot read public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("audit public key is not an Ed25519 key")
    return key


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One stored record as the verifier sees it."""

    seq: int
    body: bytes          # canonical JSON as stored
    prev_hash: str
    hash: str
    columns: Mapping[str, Any] = field(default_factory=dict)   # denormalised columns that must match the body


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed head of the chain."""

    seq: int
    hash: str
    ts: float
    key_id: str
    signature: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"seq": self.seq, "hash": self.hash, "ts": self.ts, "key_id": self.key_id, "signature": self.signature}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of :func:`verify_chain`."""

    ok: bool
    records: int
    first_seq: int | None
    last_seq: int | None
    checkpoints: int
    last_checkpoint: int | None
    unsigned_tail: int                 # records after the last signed checkpoint
    break_seq: int | None = None       # position where the chain first breaks
    problem: str | None = None         # edited | deleted | inserted | reordered | truncated | bad_signature | …
    message: str = "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"ok": self.ok, "records": self.records, "first_seq": self.first_seq, "last_seq": self.last_seq,
                "checkpoints": self.checkpoints, "last_checkpoint": self.last_checkpoint,
                "unsigned_tail": self.unsigned_tail, "break_seq": self.break_seq, "problem": self.problem,
                "message": self.message}


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def verify_chain(rows: Iterable[ChainRow], checkpoints: Iterable[Checkpoint],
                 public_keys: Mapping[str, Ed25519PublicKey], anchors: Mapping[int, str] | None = None,
                 columns_of: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None) -> VerifyReport:
    """Verify records (in ascending ``seq`` order) against their hashes and the signed checkpoints.

    ``anchors`` maps a first-kept sequence number to the hash before it, as recorded by purge records
    (the caller collects them from the chain; they are themselves chained and checkpointed).
    ``columns_of`` derives a row's denormalised (queryable) columns from its record; a row whose stored
    columns differ from the derived ones was edited.
    """
    cps = sorted(checkpoints, key=lambda c: c.seq)
    anchors = dict(anchors or {})
    by_seq: dict[int, Checkpoint] = {}
    for cp in cps:
        pk = public_keys.get(cp.key_id)
        if pk is None:
            return _broken(0, None, None, len(cps), None, 0, cp.seq, "unknown_key",
                           f"checkpoint at {cp.seq} is signed by unknown key {cp.key_id}")
        try:
            pk.verify(bytes.fromhex(cp.signature), checkpoint_message(cp.seq, cp.hash, cp.ts))
        except (InvalidSignature, ValueError):
            return _broken(0, None, None, len(cps), None, 0, cp.seq, "bad_signature",
                           f"checkpoint at {cp.seq} has an invalid signature")
        by_seq[cp.seq] = cp
    count = 0
    first: int | None = None
    last = 0
    running = GENESIS
    last_cp_seen: int | None = None
    it = _Peekable(rows)
    for row in it:
        count += 1
        if first is None:
            first = row.seq
            if row.seq != 1:
                anchor = anchors.get(row.seq)
                if anchor is None or anchor != row.prev_hash:
                    return _broken(count, first, row.seq, len(cps), last_cp_seen, 0, 1 if anchor is None else row.seq,
                                   "deleted", f"records before {row.seq} are missing and no purge record covers them")
            running = row.prev_hash
        elif row.seq != last + 1:
            problem = "deleted" if row.seq > last + 1 else "reordered"
            return _broken(count, first, last, len(cps), last_cp_seen, 0, last + 1, problem,
                           f"record {last + 1} is missing" if problem == "deleted"
                           else f"record {row.seq} is out of order")
        body = _parse(row.body)
        if body is None:
            return _broken(count, first, last, len(cps), last_cp_seen, 0, row.seq, "edited",
                           f"record {row.seq} is not valid JSON")
        if row.prev_hash != running:
            shift = body.get("seq", row.seq) - row.seq if isinstance(body.get("seq"), int) else None
            problem, at = {-1: ("inserted", row.seq - 1), 1: ("deleted", row.seq), 0: ("broken_link", row.seq)
                           }.get(shift, ("reordered", row.seq))  # type: ignore[arg-type]
            following = it.peek()
            if problem == "deleted" and following is not None and _body_seq(following) == row.seq:
                problem = "reordered"  # its predecessor comes after it: a swap, not a deletion
            return _broken(count, first, last, len(cps), last_cp_seen, 0, at, problem,
                           f"record {row.seq} does not follow record {row.seq - 1} (prev_hash mismatch): {problem}")
        if body.get("seq") != row.seq:
            return _broken(count, first, last, len(cps), last_cp_seen, 0, row.seq, "reordered",
                           f"record {row.seq} carries sequence number {body.get('seq')}")
        computed = chain_hash(running, row.body)
        if computed != row.hash:
            return _broken(count, first, last, len(cps), last_cp_seen, 0, row.seq, "edited",
                           f"record {row.seq} was modified (hash mismatch)")
        if columns_of is not None and dict(columns_of(body)) != dict(row.columns):
            return _broken(count, first, last, len(cps), last_cp_seen, 0, row.seq, "edited",
                           f"record {row.seq}: its indexed columns do not match the chained record")
        cp = by_seq.get(row.seq)
        if cp is not None:
            if cp.hash != computed:
                return _broken(count, first, last, len(cps), last_cp_seen, 0, row.seq, "rewritten",
                               f"record {row.seq} differs from the signed checkpoint: the chain up to it was rewritten")
            last_cp_seen = row.seq
        running = computed
        last = row.seq
    if cps and cps[-1].seq > last:
        # signed checkpoints past the end: the tail was truncated (or everything was deleted)
        return _broken(count, first, last, len(cps), last_cp_seen, 0, (last or 0) + 1, "truncated",
                       f"the chain ends at {last} but a signed checkpoint covers {cps[-1].seq}")
    kept_cps = [c for c in cps if first is not None and c.seq >= first]
    tail = 0 if first is None else last - (last_cp_seen or (first - 1))
    return VerifyReport(True, count, first, last or None, len(kept_cps), last_cp_seen, tail)


class _Peekable:
    """An iterator over rows that can look one row ahead."""

    def __init__(self, rows: Iterable[ChainRow]) -> None:
        self._it: Iterator[ChainRow] = iter(rows)
        self._next: ChainRow | None = None

    def __iter__(self) -> _Peekable:
        return self

    def __next__(self) -> ChainRow:
        if self._next is not None:
            row, self._next = self._next, None
            return row
        return next(self._it)

    def peek(self) -> ChainRow | None:
        if self._next is None:
            self._next = next(self._it, None)
        return self._next


def _body_seq(row: ChainRow) -> int | None:
    body = _parse(row.body)
    seq = body.get("seq") if body else None
    return seq if isinstance(seq, int) else None


def _broken(count: int, first: int | None, last: int | None, n_cps: int, last_cp: int | None, tail: int,
            at: int, problem: str, message: str) -> VerifyReport:
    return VerifyReport(False, count, first, last, n_cps, last_cp, tail, at, problem, message)
