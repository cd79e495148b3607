"""Operating points (thresholds, cascade band) of the learned detectors, chosen on dev data."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from aimds.errors import ConfigError


def default_path() -> Path:
    """The shipped ``data/models/operating_points.yaml``."""
    return Path(str(resources.files("aimds").joinpath("data/models/operating_points.yaml")))


@cache
def operating_points(path: str | None = None) -> dict[str, Any]:
    """The operating points file as a mapping (validated)."""
    p = Path(path) if path else default_path()
    try:
        raw = yaml.safe_load(p.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read operating points {p}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping")
    for key in ("classifier_threshold", "encoder_threshold"):
        v = raw.get(key)
        if not isinstance(v, (int, float)) or not 0 < v < 1:
            raise ConfigError(f"{p}: {key} must be a number in (0, 1)")
    for key in ("cascade_gate", "cascade_decided"):
        v = raw.get(key, 0.0)
        if not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ConfigError(f"{p}: {key} must be a number in [0, 1]")
    return raw
