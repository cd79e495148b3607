"""Loading labelled JSONL data sets (the shared datasets' schema)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aimds.errors import InputError

REQUIRED = ("text", "label")


def default_data_dir() -> Path:
    """``$AIMDS_DATASETS`` or ``../shared/datasets`` (beside a checkout) or ``./datasets``."""
    env = os.environ.get("AIMDS_DATASETS")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd().parent / "shared" / "datasets", Path.cwd() / "datasets"]
    for c in candidates:
        if (c / "train.jsonl").is_file():
            return c
    raise InputError("no datasets found: pass --data-dir or set AIMDS_DATASETS (expects train.jsonl, dev.jsonl)")


def read_jsonl(path: Path | str, require: str = "text") -> list[dict[str, Any]]:
    """Read JSON-object lines, with a clear error naming the first bad line.

    ``require`` names a field every row must have: ``"text"`` (a string) by default, ``"turns"`` (a list)
    for multi-turn sessions.
    """
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n}: each line must be a JSON object")
        if require == "text" and not isinstance(row.get("text"), str):
            raise InputError(f"{path}:{n}: each line needs a string 'text'")
        if require == "turns" and not (isinstance(row.get("turns"), list)
                                       and all(isinstance(t, dict) and isinstance(t.get("text"), str)
                                               for t in row["turns"])):
            raise InputError(f"{path}:{n}: each line needs 'turns', a list of {{role, text}}")
        rows.append(row)
    return rows
