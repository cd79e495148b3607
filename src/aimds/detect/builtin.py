"""Imports the built-in detectors so that they register themselves."""

from aimds.detect import classifier, doubles, encoder_detector, obfuscation, pii, secrets, signature_detector

__all__ = ["classifier", "doubles", "encoder_detector", "obfuscation", "pii", "secrets", "signature_detector"]
