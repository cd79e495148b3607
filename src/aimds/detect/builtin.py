"""Imports the built-in detectors so that they register themselves."""

import aimds.detect.output  # noqa: F401  (registers canary, prompt_leak_output, exfil_output)
from aimds.detect import (
    classifier,
    doubles,
    encoder_detector,
    memory,
    obfuscation,
    pii,
    secrets,
    signature_detector,
)

__all__ = ["classifier", "doubles", "encoder_detector", "memory", "obfuscation", "pii", "secrets", "signature_detector"]
