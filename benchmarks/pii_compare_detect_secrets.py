"""Compare: detect-secrets (default plugins) on the secret entities of the labelled set.

detect-secrets is not a project dependency; run this with an interpreter that has it, e.g.
  python -m venv /tmp/ds && /tmp/ds/bin/pip install detect-secrets==1.5.0
  /tmp/ds/bin/python benchmarks/pii_compare_detect_secrets.py
A gold secret counts as found when a reported secret value and the gold span contain one another;
"near-miss rows flagged" counts texts with no entity at all where detect-secrets reports something.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from detect_secrets.core.scan import scan_line
from detect_secrets.settings import default_settings

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "pii_labelled.jsonl"
SECRET = {"aws_access_key", "aws_secret_key", "github_token", "gitlab_token", "slack_token", "slack_webhook",
          "stripe_key", "openai_key", "anthropic_key", "google_api_key", "azure_key", "twilio_key", "sendgrid_key",
          "npm_token", "pypi_token", "private_key", "jwt", "database_url", "password", "generic_secret"}


def main() -> None:
    """Print recall on secret entities, near-miss rows flagged, and time per text."""
    rows = [json.loads(line) for line in DATA.read_text("utf-8").splitlines() if line.strip()]
    gold = found = flagged = negatives = 0
    elapsed = 0.0
    with default_settings():
        for r in rows:
            t0 = time.perf_counter()
            values = [s.secret_value for line in r["text"].splitlines() for s in scan_line(line)]
            elapsed += time.perf_counter() - t0
            for e in r["entities"]:
                if e["type"] in SECRET:
                    gold += 1
                    span = r["text"][e["start"]:e["end"]]
                    found += any(v and (v in span or span in v) for v in values)
            if not r["entities"]:
                negatives += 1
                flagged += bool(values)
    print(f"detect-secrets default plugins: secret recall {found}/{gold} = {found / gold:.3f}; "
          f"near-miss rows flagged {flagged}/{negatives}; {elapsed / len(rows) * 1e6:.0f} µs per text")


if __name__ == "__main__":
    main()
