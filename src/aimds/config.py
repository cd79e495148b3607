"""Settings: which detectors run, with which options, under which policy and limits.

Settings come from (lowest to highest precedence) defaults, a YAML file (``AIMDS_CONFIG`` or
``Settings.from_file``) and ``AIMDS_*`` environment variables. Nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from aimds.errors import ConfigError

DEFAULT_DETECTORS = ("obfuscation", "signatures", "pii", "secrets", "canary", "exfil_output", "prompt_leak_output",
                     "classifier", "encoder")


@dataclass(frozen=True)
class Settings:
    """Typed configuration of a :class:`aimds.Guard`."""

    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    detector_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    policy: str = "default"              # a shipped policy name or a path to a YAML file
    max_chars: int = 200_000             # longer input raises InputTooLargeError
    detector_budget_ms: float = 250.0    # a detector slower than this is named in versions["slow_detectors"]
    decode_depth: int = 4
    decode_budget_ms: float = 20.0
    scan_deadline_ms: float = 150.0      # wall-clock budget per scan: the encoder stops scoring windows past it
    concurrent_min_chars: int = 32_000   # from here concurrent detectors run in a thread beside the rest (0: never)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Settings:
        """Build settings from a mapping, rejecting unknown keys."""
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"unknown settings: {sorted(unknown)}")
        values = dict(raw)
        if "detectors" in values:
            values["detectors"] = tuple(values["detectors"])
        try:
            settings = cls(**values)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None
        settings.validate()
        return settings

    @classmethod
    def from_file(cls, path: Path | str) -> Settings:
        """Load settings from a YAML file."""
        try:
            raw = yaml.safe_load(Path(path).read_text("utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read settings {path}: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"settings file {path} must hold a mapping")
        return cls.from_mapping(raw)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``AIMDS_CONFIG`` (a YAML file) overlaid with ``AIMDS_*`` variables."""
        env = os.environ if environ is None else environ
        settings = cls.from_file(env["AIMDS_CONFIG"]) if env.get("AIMDS_CONFIG") else cls()
        updates: dict[str, Any] = {}
        if env.get("AIMDS_DETECTORS"):
            updates["detectors"] = tuple(x.strip() for x in env["AIMDS_DETECTORS"].split(",") if x.strip())
        if env.get("AIMDS_POLICY"):
            updates["policy"] = env["AIMDS_POLICY"]
        if env.get("AIMDS_MAX_CHARS"):
            try:
                updates["max_chars"] = int(env["AIMDS_MAX_CHARS"])
            except ValueError:
                raise ConfigError("AIMDS_MAX_CHARS must be an integer") from None
        if env.get("AIMDS_SCAN_DEADLINE_MS"):
            try:
                updates["scan_deadline_ms"] = float(env["AIMDS_SCAN_DEADLINE_MS"])
            except ValueError:
                raise ConfigError("AIMDS_SCAN_DEADLINE_MS must be a number") from None
        if env.get("AIMDS_CONCURRENT_MIN_CHARS"):
            try:
                updates["concurrent_min_chars"] = int(env["AIMDS_CONCURRENT_MIN_CHARS"])
            except ValueError:
                raise ConfigError("AIMDS_CONCURRENT_MIN_CHARS must be an integer") from None
        settings = replace(settings, **updates)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ConfigError for values that cannot work."""
        if self.max_chars <= 0:
            raise ConfigError("max_chars must be positive")
        if not self.detectors:
            raise ConfigError("at least one detector is required")
        if self.detector_budget_ms <= 0 or self.decode_budget_ms <= 0:
            raise ConfigError("time budgets must be positive")
        if not self.scan_deadline_ms > 0:  # also rejects NaN
            raise ConfigError("scan_deadline_ms must be positive")
        if self.concurrent_min_chars < 0:
            raise ConfigError("concurrent_min_chars must be 0 (off) or positive")
