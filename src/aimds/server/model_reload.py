"""Hot reload of learned classifier versions: each worker follows the store's active model version.

A daemon thread reads the active version (``model_activations`` in the store) every ``poll_s``
seconds (default 1 s). When it changed, the worker loads that version's files (checked against
their manifest's sha256), then swaps the classifier's model and operating points in one assignment
(:meth:`ClassifierDetector.swap_model`); the encoder stage follows the operating points the
classifier used for each scan. Scans keep running during the swap. A version that fails to load is
logged and skipped: the worker keeps its current model (and retries when the active version changes).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from aimds.detect.linear_model import LinearModel, default_model_path
from aimds.detect.operating_points import operating_points
from aimds.store.models import MODEL_FILE, POINTS_FILE, SHIPPED, ModelRegistry, verify_files, version_dir

log = logging.getLogger("aimds.server")


def load_version(registry: ModelRegistry, version: str) -> tuple[LinearModel, dict[str, Any]]:
    """The model and operating points of ``version`` (``shipped``: the packaged ones), verified."""
    if version == SHIPPED:
        return LinearModel.load(default_model_path()), dict(operating_points())
    manifest = registry.get(version)
    if manifest is None:
        from aimds.errors import ModelError

        raise ModelError(f"no model version {version!r}")
    folder = version_dir(registry.data_dir, version)
    verify_files(folder, manifest)
    model = LinearModel.load(folder / MODEL_FILE)
    return model, dict(operating_points(str(Path(folder / POINTS_FILE))))


class ModelReloader:
    """Keeps one guard's classifier on the store's active version."""

    def __init__(self, guard: Any, registry: ModelRegistry, poll_s: float = 1.0) -> None:
        self.guard = guard
        self.registry = registry
        self.poll_s = poll_s
        self.current = SHIPPED
        self.failed: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def classifier(self) -> Any:
        """The guard's classifier detector (None when the guard has none)."""
        return next((d for d in self.guard.detectors if hasattr(d, "swap_model")), None)

    def check(self) -> bool:
        """Swap to the active version if it changed; True when a swap happened."""
        det = self.classifier
        if det is None:
            return False
        with self._lock:
            try:
                active = self.registry.active()
            except Exception:  # the store is busy or closing: try again next tick
                log.exception("cannot read the active model version")
                return False
            if active == self.current or active == self.failed:
                return False
            try:
                model, ops = load_version(self.registry, active)
            except Exception as exc:
                self.failed = active
                log.error("model version %s cannot be loaded; keeping %s: %s", active, self.current, exc)
                return False
            if active != SHIPPED:
                model.meta["version"] = active
            det.swap_model(model, ops)
            for d in self.guard.detectors:
                if d is not det and hasattr(d, "apply_operating_points"):
                    d.apply_operating_points(ops)
            log.info("model version %s active (was %s)", active, self.current)
            self.current, self.failed = active, None
            return True

    def start(self) -> None:
        """Apply the active version now, then follow it in a daemon thread."""
        self.check()
        self._thread = threading.Thread(target=self._run, name="aimds-model-reload", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.check()

    def stop(self) -> None:
        """Stop following (joins the thread)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
