"""The AIMDS exception hierarchy. Every public error derives from :class:`AIMDSError`.

::

    AIMDSError
    ├── ConfigError            bad configuration, policy or rule file
    │   └── RuleError          a signature rule that does not compile or fails its schema
    ├── InputError             a request the guard refuses to scan
    │   └── InputTooLargeError text longer than the configured limit
    ├── ModelError             a model artifact is missing, corrupt or incompatible
    └── DetectorError          a detector failed while scanning (reported in the verdict)
        └── DetectorTimeout    a detector ran past its time budget
"""

from __future__ import annotations


class AIMDSError(Exception):
    """Root of every error raised by aimds."""


class ConfigError(AIMDSError):
    """Invalid configuration, policy or data file."""


class RuleError(ConfigError):
    """A signature rule is malformed or its pattern does not compile."""


class InputError(AIMDSError):
    """The request cannot be scanned as given."""


class InputTooLargeError(InputError):
    """The text is longer than the configured ``max_chars``."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"input is {length} characters, over the limit of {limit}")
        self.length = length
        self.limit = limit


class ModelError(AIMDSError):
    """A model artifact is missing, corrupt or incompatible with this version."""


class DetectorError(AIMDSError):
    """A detector failed while scanning."""


class DetectorTimeout(DetectorError):
    """A detector exceeded its time budget."""
