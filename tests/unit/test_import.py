"""`import aimds` stays cheap: no model runtime, no training library, no model file read."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_no_models() -> None:
    code = ("import sys, aimds; heavy = [m for m in ('onnxruntime', 'tokenizers', 'sklearn', 'torch', 'scipy') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""


def test_guard_construction_does_not_load() -> None:
    from aimds import Guard

    g = Guard()
    assert not any(d.loaded for d in g.detectors)
