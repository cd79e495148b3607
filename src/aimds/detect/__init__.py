"""Tier 1 detectors: signatures, classifier, obfuscation signals, and test doubles."""
