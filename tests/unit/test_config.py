"""Settings from files and environment, with clear errors for bad values."""

from __future__ import annotations

import pytest

from aimds import ConfigError, Settings


def test_defaults_are_valid() -> None:
    s = Settings()
    s.validate()
    assert "signatures" in s.detectors and s.max_chars > 0


def test_from_env_overrides(tmp_path) -> None:
    cfg = tmp_path / "aimds.yaml"
    cfg.write_text("max_chars: 5000\npolicy: default\n")
    s = Settings.from_env({"AIMDS_CONFIG": str(cfg), "AIMDS_DETECTORS": "signatures, classifier",
                           "AIMDS_MAX_CHARS": "7000"})
    assert s.detectors == ("signatures", "classifier")
    assert s.max_chars == 7000


@pytest.mark.parametrize("env", [
    {"AIMDS_MAX_CHARS": "lots"},
    {"AIMDS_MAX_CHARS": "0"},
])
def test_bad_env_values_are_config_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_unknown_keys_and_bad_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown settings"):
        Settings.from_mapping({"detectrs": ["signatures"]})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        Settings.from_file(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.from_file(tmp_path / "missing.yaml")


def test_unknown_detector_is_a_clear_error() -> None:
    from aimds import Guard

    with pytest.raises(ConfigError, match="unknown detector"):
        Guard(Settings(detectors=("nope",)))
