"""Imports the built-in detectors so that they register themselves."""

from aimds.detect import classifier, doubles, obfuscation, signature_detector

__all__ = ["classifier", "doubles", "obfuscation", "signature_detector"]
