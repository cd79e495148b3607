"""Tier 1 secrets detector: provider API keys, tokens, private keys, JWTs and credentials in context."""

from __future__ import annotations

from typing import ClassVar

from aimds.detect.base import register
from aimds.detect.pii import EntityDetector
from aimds.types import Category


@register
class SecretsDetector(EntityDetector):
    """Finds credentials: AWS/GitHub/GitLab/Slack/Stripe/OpenAI/Anthropic/Google/Azure/Twilio/SendGrid/npm/PyPI keys,
    private key blocks, JWTs, database URLs with passwords, and high-entropy values assigned to key-ish names.

    Candidates come from ``data/pii/secrets.yaml``; placeholders and documented example keys are not reported.
    """

    name: ClassVar[str] = "secrets"
    tier: ClassVar[int] = 1
    category: ClassVar[Category] = Category.SECRET
    categories: ClassVar[tuple[Category, ...]] = (Category.SECRET,)
    tags: ClassVar[tuple[str, ...]] = ("owasp:LLM02:2025", "atlas:AML.T0057")
    cost: ClassVar[int] = 60
