"""Start-up priming (``AIMDS_PRIME_FILE``): the service reads a traffic sample before it reports ready."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from aimds import Guard
from aimds.config import Settings
from aimds.errors import ConfigError
from aimds.server.settings import ServiceSettings
from tests.server.conftest import start_server


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, msg: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.getMessage() == msg]


@pytest.fixture
def server_log() -> Iterator[_Records]:
    handler = _Records()
    logger = logging.getLogger("aimds.server")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_service_primes_before_ready(tmp_path: Path, server_log: _Records) -> None:
    sample = tmp_path / "sample.jsonl"
    sample.write_text("\n".join(json.dumps({"text": f"Order {i}: where is my parcel to Porto?"}) for i in range(30))
                      + "\n" + json.dumps({"text": ""}) + "\n")
    guard = Guard(Settings(detectors=("obfuscation", "signatures", "classifier")))
    live = start_server(tmp_path / "data", guard, prime_file=sample, prime_seconds=20)
    try:
        with live.client("detector") as c:
            assert c.get("/readyz").json()["status"] == "ready"
        primed = server_log.named("primed")
        assert len(primed) == 1 and primed[0].texts == 30 and primed[0].of == 31  # type: ignore[attr-defined]
        messages = [r.getMessage() for r in server_log.records]
        assert messages.index("primed") < messages.index("ready")
    finally:
        live.stop()


def test_a_malformed_sample_is_skipped_not_fatal(tmp_path: Path, server_log: _Records) -> None:
    sample = tmp_path / "bad.jsonl"
    sample.write_text('{"text": "fine"}\nnot json\n')
    guard = Guard(Settings(detectors=("obfuscation", "signatures")))
    live = start_server(tmp_path / "data", guard, prime_file=sample)
    try:
        with live.client("detector") as c:
            assert c.get("/readyz").json()["status"] == "ready"
        skipped = server_log.named("priming skipped")
        assert len(skipped) == 1 and "bad.jsonl:2" in skipped[0].reason  # type: ignore[attr-defined]
    finally:
        live.stop()


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="prime_seconds"):
        ServiceSettings(data_dir=tmp_path, prime_seconds=0).validate()
    with pytest.raises(ConfigError, match="prime_file"):
        ServiceSettings(data_dir=tmp_path, prime_file=tmp_path / "missing.jsonl").validate()
    sample = tmp_path / "s.jsonl"
    sample.write_text('{"text": "hello"}\n')
    env = {"AIMDS_PRIME_FILE": str(sample), "AIMDS_PRIME_SECONDS": "5", "AIMDS_DATA_DIR": str(tmp_path)}
    settings = ServiceSettings.from_env(env)
    assert settings.prime_file == sample and settings.prime_seconds == 5.0
