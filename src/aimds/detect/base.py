"""The detector plugin contract and the one registry shared by library, CLI and server.

A detector is a class with metadata as plain class attributes and one method, ``scan``. Heavy
resources (models, compiled rule sets) are loaded in ``load()``, never in the constructor or at
import. Third-party detectors register through the ``aimds.detectors`` entry point group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeVar

from aimds.errors import ConfigError
from aimds.normalize.views import Views
from aimds.types import Category, Finding, ScanRequest


@dataclass(frozen=True, slots=True)
class ScanContext:
    """What a detector may know besides the text: the request and its own options."""

    request: ScanRequest
    options: Mapping[str, Any] = field(default_factory=dict)
    prior_risk: float = 0.0   # risk from the detectors that ran before (cascade stages read it)
    #: What detectors publish for later cascade stages, e.g. ``{"classifier": p,
    #: "classifier_windows": [(start, end, p), ...]}`` (window spans in the folded view).
    scores: dict[str, Any] = field(default_factory=dict)
    #: Wall-clock end of the scan's budget (a ``time.perf_counter()`` value; None: no deadline).
    #: A costly stage checks it between units of work and stops once it has passed.
    deadline: float | None = None
    #: Lines a detector adds to the verdict's ``notes`` (e.g. work skipped at the deadline).
    notes: list[str] = field(default_factory=list)


class Detector(ABC):
    """Base class of every detector.

    Class attributes (checked for every registered detector by ``tests/detect/test_contract.py``):

    - ``name``: registry key, lower_snake_case.
    - ``tier``: 1 (fast path) or 2 (deep path).
    - ``categories``: the categories its findings may carry.
    - ``tags``: taxonomy tags (``owasp:…``, ``atlas:…``).
    - ``cost``: rough cost in microseconds per 1,000 characters; the pipeline runs cheapest first.
    - ``cascade``: when true the detector is an expensive second stage, run only if ``wants()``.
    """

    name: ClassVar[str]
    tier: ClassVar[int] = 1
    categories: ClassVar[tuple[Category, ...]] = ()
    tags: ClassVar[tuple[str, ...]] = ()
    cost: ClassVar[int] = 100
    #: A cascade stage only runs when :meth:`wants` says so, given the risk found so far.
    cascade: ClassVar[bool] = False
    #: Its scan spends most of its time in native code that releases the GIL and reads nothing other
    #: detectors write to the context: on long texts the pipeline runs it beside the others.
    concurrent: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._loaded = False

    def load(self) -> None:
        """Load heavy resources. Idempotent; called once by the pipeline before the first scan."""
        self._loaded = True

    def wants(self, context: ScanContext) -> bool:
        """For cascade stages: whether the outcome is uncertain enough to be worth running."""
        return True

    @property
    def loaded(self) -> bool:
        """Whether ``load()`` has run."""
        return self._loaded

    def version(self) -> str:
        """Version of the rules or model this detector uses (reported in verdicts)."""
        return "1"

    @abstractmethod
    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """Return findings for ``views``; spans must point into ``views.original``."""


D = TypeVar("D", bound=type[Detector])

REGISTRY: dict[str, type[Detector]] = {}


def register(cls: D) -> D:
    """Class decorator that adds a detector to the registry under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not name:
        raise TypeError(f"{cls.__qualname__} has no name")
    existing = REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"detector name {name!r} already registered by {existing.__qualname__}")
    REGISTRY[name] = cls
    return cls


_builtins_loaded = False


def load_builtin_detectors() -> None:
    """Import the built-in detector modules (which register themselves) and entry-point plugins."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    from aimds.detect import builtin  # noqa: F401  (registers by import)

    for ep in entry_points(group="aimds.detectors"):
        obj: Callable[..., Any] = ep.load()
        if isinstance(obj, type) and issubclass(obj, Detector) and obj.name not in REGISTRY:
            register(obj)
    _builtins_loaded = True


def get_detector(name: str) -> type[Detector]:
    """The detector class registered as ``name``."""
    load_builtin_detectors()
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown detector {name!r}; known: {sorted(REGISTRY)}") from None
