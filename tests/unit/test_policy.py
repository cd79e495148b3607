"""The decision policy: thresholds, caps, role actions, fail modes."""

from __future__ import annotations

import pytest

from aimds.errors import ConfigError
from aimds.respond.policy import Policy, combine, decide
from aimds.types import Action, Category, Finding, Role, TierError


def f(score: float, cat: Category = Category.PROMPT_INJECTION, det: str = "d") -> Finding:
    return Finding(det, "r", cat, score, 5)


POLICY = Policy.load()


def test_thresholds() -> None:
    assert decide([], Role.USER, POLICY).action is Action.ALLOW
    assert decide([f(POLICY.monitor)], Role.USER, POLICY).action is Action.MONITOR
    assert decide([f(POLICY.block)], Role.USER, POLICY).action is Action.BLOCK


def test_noisy_or_per_detector() -> None:
    assert combine([f(0.5, det="a"), f(0.5, det="a")]) == pytest.approx(0.5)
    assert combine([f(0.5, det="a"), f(0.5, det="b")]) == pytest.approx(0.75)


def test_obfuscation_alone_is_capped_at_monitor() -> None:
    d = decide([f(0.95, Category.OBFUSCATION)], Role.USER, POLICY)
    assert d.action is Action.MONITOR
    assert d.categories == (Category.OBFUSCATION,)


def test_documents_are_sanitised_not_blocked() -> None:
    assert decide([f(0.95)], Role.DOCUMENT, POLICY).action is Action.SANITIZE


def test_fail_closed_and_open() -> None:
    err = [TierError(1, "x", "error", "boom")]
    assert decide([], Role.USER, POLICY, err).action is Action.BLOCK
    open_policy = Policy.from_dict({"thresholds": {"block": 0.8, "monitor": 0.5}, "fail_mode": "open"})
    assert decide([], Role.USER, open_policy, err).action is Action.ALLOW


@pytest.mark.parametrize("raw", [
    {},
    {"thresholds": {"block": 0.3, "monitor": 0.5}},
    {"thresholds": {"block": 0.8, "monitor": 0.5}, "fail_mode": "sometimes"},
    {"thresholds": {"block": 0.8, "monitor": 0.5}, "category_caps": {"nonsense": "allow"}},
])
def test_bad_policies_are_rejected(raw: dict) -> None:
    with pytest.raises(ConfigError):
        Policy.from_dict(raw)


def test_unknown_shipped_policy() -> None:
    with pytest.raises(ConfigError):
        Policy.load("does-not-exist")


def test_personal_data_redacts_without_raising_the_threat_risk() -> None:
    pii = f(0.95, Category.PII, det="pii")
    secret = f(0.9, Category.SECRET, det="secrets")
    d = decide([pii, secret], Role.USER, POLICY)
    assert (d.action, d.threat_action, d.risk) == (Action.REDACT, Action.ALLOW, 0.0)
    assert set(d.categories) == {Category.PII, Category.SECRET}
    # a weak threat signal next to personal data does not add up to a block
    d = decide([pii, f(0.3)], Role.USER, POLICY)
    assert d.action is Action.REDACT and d.threat_action is Action.ALLOW
    d = decide([pii, f(0.9)], Role.USER, POLICY)
    assert d.action is Action.BLOCK and d.threat_action is Action.BLOCK
    assert decide([f(0.3, Category.PII, det="pii")], Role.USER, POLICY).action is Action.ALLOW


def test_data_and_capped_categories_cannot_overlap() -> None:
    with pytest.raises(ConfigError):
        Policy.from_dict({"thresholds": {"block": 0.8, "monitor": 0.5}, "category_caps": {"pii": "monitor"},
                          "data_actions": {"pii": "redact"}})


def test_guard_masks_personal_data_and_is_not_flagged(guard: object) -> None:
    from aimds import Guard

    assert isinstance(guard, Guard)
    v = guard.scan("Please update my card 4539 1488 0343 6467 and mail jane.doe@corp-mail.com when done.")
    assert v.action is Action.REDACT and not v.flagged
    assert v.sanitized_text is not None and "4539" not in v.sanitized_text and "<EMAIL_1>" in v.sanitized_text
