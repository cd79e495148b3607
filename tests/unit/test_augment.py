"""The synthetic data generator: deterministic, well-formed, varied, and its encodings really decode."""

from __future__ import annotations

import base64
import codecs
import json
import os
import random
import subprocess
import sys
import unicodedata
import urllib.parse

import pytest

from aimds.train import augment
from aimds.train.augment import (
    CATEGORIES,
    DEFAULT_FAMILIES,
    ENCODER_V1_FAMILIES,
    FAMILIES,
    HOMOGLYPHS,
    LEET,
    MORSE,
    PREBOUND_VARS,
    ZERO_WIDTH,
    generate,
    generate_samples,
    load_grammar,
)

ATTACK_CATEGORIES = {"prompt_injection", "indirect_injection", "jailbreak", "prompt_leak", "obfuscation"}
# Words at least one of which any English attack payload contains.
ATTACK_WORDS = (
    "ignore", "disregard", "forget", "instruction", "prompt", "rule", "password", "reveal", "system",
    "restriction", "unfiltered", "how to", "how do i", "send", "email", "tool", "run", "execute", "iban",
    "admin", "secret", "key", "delete", "upload", "transfer", "guide", "policy", "say", "print", "access",
    "filter", "guideline", "config", "chat", "phishing", "task", "orders", "prior", "above", "instead",
    "approve", "pretend", "answer", "disable", "grant", "tell", "give", "insult", "claim", "recommend",
    "write", "refund", "leak", "list", "output", "respond", "repeat", "reply", "rate", "developer",
    "context", "verbatim", "forwarding",
)


@pytest.fixture(scope="module")
def small() -> list[dict]:
    return generate(seed=7, n_per_family=40)


@pytest.fixture(scope="module")
def full() -> list[dict]:
    return generate()


def test_same_seed_same_rows() -> None:
    assert generate(seed=21, n_per_family=25) == generate(seed=21, n_per_family=25)


def test_other_seed_other_rows() -> None:
    a = {r["text"] for r in generate(seed=1, n_per_family=25)}
    b = {r["text"] for r in generate(seed=2, n_per_family=25)}
    assert len(a & b) < len(a) // 2


def test_same_rows_across_hash_seeds() -> None:
    code = ("import hashlib, json; from aimds.train.augment import generate; "
            "print(hashlib.sha256(json.dumps(generate(5, 20)).encode()).hexdigest())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "4242")}
    assert len(outs) == 1


def test_global_random_untouched() -> None:
    state = random.getstate()
    generate(seed=3, n_per_family=10)
    assert random.getstate() == state


def test_rows_are_well_formed(small: list[dict]) -> None:
    for row in small:
        assert set(row) == {"text", "label", "category", "source", "lang"}
        assert isinstance(row["text"], str) and row["text"].strip() == row["text"] and row["text"]
        assert row["label"] in (0, 1)
        assert row["category"] in CATEGORIES
        assert row["label"] == (row["category"] in ATTACK_CATEGORIES), row
        assert row["source"].startswith("synth:") and row["source"][6:] in FAMILIES
        assert isinstance(row["lang"], str) and 2 <= len(row["lang"]) <= 3


def test_every_family_present(small: list[dict]) -> None:
    counts = {name: 0 for name in DEFAULT_FAMILIES}
    for row in small:
        counts[row["source"][6:]] += 1
    assert counts == {name: 40 for name in DEFAULT_FAMILIES}


def test_default_sizes_and_balance(full: list[dict]) -> None:
    counts: dict[str, int] = {}
    for row in full:
        counts[row["source"]] = counts.get(row["source"], 0) + 1
    for name in DEFAULT_FAMILIES:
        assert counts[f"synth:{name}"] == FAMILIES[name].default_n, name
    assert "synth:mixed_docs" not in counts  # opt-in
    attacks = sum(r["label"] for r in full)
    ratio = (len(full) - attacks) / attacks
    assert 1.1 <= ratio <= 1.5, ratio
    assert {r["category"] for r in full} == set(CATEGORIES)


def test_no_duplicates(full: list[dict]) -> None:
    texts = [r["text"] for r in full]
    assert len(set(texts)) == len(texts)
    keys = [" ".join(unicodedata.normalize("NFKC", t).casefold().split()) for t in texts]
    assert len(set(keys)) == len(keys)


def test_languages_covered(full: list[dict]) -> None:
    ml = {r["lang"] for r in full if r["source"] == "synth:multilingual"}
    assert ml == set(load_grammar().langs)
    assert len(ml) >= 16
    benign_ml = {r["lang"] for r in full if r["source"] == "synth:benign_ml"}
    assert benign_ml == ml


def test_grammar_references_resolve() -> None:
    g = load_grammar()
    for kind, name in g.refs():
        if kind == "fn":
            assert name in augment._FUNCS, name
        elif kind == "var":
            assert name in g.slots or name in PREBOUND_VARS, name
        else:
            assert name in g.slots, f"{kind} {name}"
    for code, table in g.langs.items():
        assert set(table) == {"greet", "ovr", "goal", "leak", "jb", "harm", "benign", "hard"}, code


def test_lengths_vary(full: list[dict]) -> None:
    lengths = sorted(len(r["text"]) for r in full)
    assert lengths[len(lengths) // 10] < 80
    assert lengths[-len(lengths) // 10] > 300
    assert sum(n > 1000 for n in lengths) > len(lengths) // 100
    jb = [r["text"] for r in full if r["category"] == "jailbreak"]
    assert sum("\n\n" in t for t in jb) > len(jb) // 4


def _decode(method: str, enc: str) -> str:
    if method == "base64":
        return base64.b64decode(enc, validate=True).decode()
    if method == "hex":
        return bytes.fromhex(enc.replace("\\x", "").replace(" ", "")).decode()
    if method == "rot13":
        return codecs.decode(enc, "rot_13")
    if method == "reverse":
        return enc[::-1]
    if method == "reverse_words":
        return " ".join(reversed(enc.split(" ")))
    if method == "tags":
        return "".join(chr(ord(c) - 0xE0000) for c in enc)
    if method == "fullwidth":
        return unicodedata.normalize("NFKC", enc)
    if method == "url":
        return urllib.parse.unquote(enc)
    if method == "zero_width":
        return "".join(c for c in enc if c not in ZERO_WIDTH)
    if method == "binary":
        return bytes(int(b, 2) for b in enc.split()).decode()
    if method == "morse":
        back = {v: k for k, v in MORSE.items()}
        return " ".join("".join(back[c] for c in w.split()) for w in enc.split(" / "))
    if method == "homoglyph":
        back = {v: k for k, v in HOMOGLYPHS.items()}
        return "".join(back.get(c, c) for c in enc)
    raise AssertionError(method)


def test_obfuscated_rows_contain_real_encodings() -> None:
    samples = generate_samples(seed=5, n_per_family=400, families=["obfuscation"])["obfuscation"]
    methods = {s.meta["method"] for s in samples}
    assert methods == set(augment._OBF_METHODS)
    for s in samples:
        m, payload = s.meta["method"], s.meta["payload"]
        if m == "mixed":
            assert payload in s.text
            continue
        if m == "split":
            parts = s.meta["parts"]
            assert "".join(parts) == payload and len(parts) >= 2
            assert all(p in s.text for p in parts)
        else:
            enc = s.meta["encoded"]
            assert enc in s.text and enc != payload
            if m == "leet":
                assert len(enc) == len(payload)
                assert all(e == p or e == LEET.get(p.lower()) for e, p in zip(enc, payload, strict=True))
            elif m == "caesar":
                assert augment.enc_caesar(enc, 26 - s.meta["shift"]) == payload
            elif m == "morse":
                words = [w for w in payload.lower().split(" ") if any(c in MORSE for c in w)]
                assert _decode(m, enc) == " ".join("".join(c for c in w if c in MORSE) for w in words)
            elif m == "spaced":
                strip = str.maketrans("", "", " .-_")
                assert enc.translate(strip) == payload.translate(strip)
            else:
                assert _decode(m, enc) == payload, (m, enc)
        assert len(payload.split()) >= 3 or s.lang in ("zh", "ja")
    english = [s.meta["payload"].lower() for s in samples if s.lang == "en" and s.meta["method"] != "mixed"]
    hits = sum(any(w in p for w in ATTACK_WORDS) for p in english)
    assert hits >= 0.9 * len(english)


def test_base64_rows_decode_to_attack_sentences() -> None:
    samples = generate_samples(seed=11, n_per_family=300, families=["obfuscation"])["obfuscation"]
    b64 = [s for s in samples if s.meta["method"] == "base64" and s.lang == "en"]
    assert len(b64) >= 10
    decoded_all = []
    for s in b64:
        # find the token in the text itself: the longest run that decodes as base64 to UTF-8
        tokens = [t.strip(".,:;\"'()[]^") for t in s.text.split()]
        decoded = None
        for tok in sorted(tokens, key=len, reverse=True):
            try:
                decoded = base64.b64decode(tok, validate=True).decode()
                break
            except ValueError:
                continue
        assert decoded == s.meta["payload"], s.text
        decoded_all.append(decoded.lower())
    assert sum(any(w in d for w in ATTACK_WORDS) for d in decoded_all) >= 0.9 * len(decoded_all)


def test_indirect_payload_is_inside_the_document() -> None:
    samples = generate_samples(seed=4, n_per_family=200, families=["indirect", "exfil"])
    kinds = set()
    for fam in ("indirect", "exfil"):
        for s in samples[fam]:
            if s.meta.get("kind") in (None, "direct"):
                continue
            kinds.add(s.meta["kind"])
            if s.meta["kind"] == "json":
                assert json.dumps(s.meta["payload"], ensure_ascii=False)[1:-1] in s.text or \
                    json.dumps(s.meta["payload"])[1:-1] in s.text
            else:
                assert s.meta["payload"] in s.text
    assert {"email", "web", "code_py", "table", "json", "markdown"} <= kinds


def test_carriers_host_payloads() -> None:
    marker = "The quarterly harvest festival in the valley draws farmers from every village"
    carriers = [f"{marker} number {i}. It lasts three days.\n\nStalls sell bread and honey." for i in range(5)]
    samples = generate_samples(seed=9, n_per_family=120, carriers=carriers, families=["indirect"])["indirect"]
    hosted = [s for s in samples if s.meta["kind"] == "external"]
    assert hosted
    for s in hosted:
        assert marker in s.text and s.meta["payload"] in s.text and s.label == 1
    rows = generate(seed=9, n_per_family=30, carriers=carriers)
    assert rows == generate(seed=9, n_per_family=30, carriers=carriers)
    assert not any(marker in r["text"] for r in rows if r["label"] == 0)  # carriers are never copied as benign


def test_benign_docs_share_carriers_with_attacks() -> None:
    samples = generate_samples(seed=2, n_per_family=200, families=["hard_docs"])["hard_docs"]
    kinds = {s.meta.get("kind") for s in samples}
    assert {"email", "web", "json", "table", "code_py"} <= kinds
    assert all(s.label == 0 for s in samples)


def test_cli_writes_jsonl(tmp_path, capsys) -> None:
    out = tmp_path / "rows.jsonl"
    assert augment.main(["--seed", "3", "--n", "6", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6 * len(DEFAULT_FAMILIES)
    printed = capsys.readouterr().out
    assert "synth:override" in printed and "total" in printed


def test_grammar_syntax_errors() -> None:
    g = augment.Grammar({"a": ["x"]}, {})
    rng = random.Random(0)
    assert g.expand("{a}{{b}}{x|}", rng) in ("x{b}x", "x{b}")
    assert g.expand("{$a}-{$a}", rng) == "x-x"
    for bad in ("{a", "a}", "{no such}", "{missing}", "{#nofunc}"):
        with pytest.raises(augment.GrammarError):
            g.expand(bad, rng)


def test_requests_family_is_opt_in() -> None:
    rows = generate_samples(seed=3, n_per_family=5, families=["requests"])["requests"]
    assert len(rows) == 5 and all(r.label == 0 for r in rows)


def test_encoder_v1_families_reproduce_the_old_set() -> None:
    assert set(ENCODER_V1_FAMILIES) == set(DEFAULT_FAMILIES) - {"requests"}
    with pytest.raises(ValueError, match="unknown augmentation families"):
        generate(seed=1, n_per_family=2, families=["nope"])


def test_planted_task_at_start_gets_the_users_request_only_with_requests() -> None:
    def opening_is_payload(fams: list[str]) -> list[bool]:
        out = generate_samples(seed=9, n_per_family=300, families=fams)["task_injection"]
        found = [(s.text.lower().find(s.meta["payload"][:12].lower()), s.text)
                 for s in out if s.meta["where"] == "start"]
        return [k >= 0 and "\n" not in text[:k] for k, text in found]  # nothing on a line before the payload

    # Without the requests family, some texts open with the planted task; with it, a user's task comes first.
    assert any(opening_is_payload(["task_injection"]))
    assert not any(opening_is_payload(["task_injection", "requests"]))


def test_mixed_docs_are_benign_multi_document_texts() -> None:
    rows = generate_samples(seed=3, n_per_family=50, families=["mixed_docs"])["mixed_docs"]
    assert len(rows) == 50
    assert all(r.label == 0 and r.category == "benign_hard" for r in rows)
    assert all(len(r.meta["kinds"]) >= 2 and r.text.count("\n\n") >= 1 for r in rows)


def test_short_turns_is_an_opt_in_benign_family_of_short_turns() -> None:
    from aimds import Guard, Settings

    assert "short_turns" not in augment.DEFAULT_FAMILIES  # aimds train still reproduces the shipped model
    assert (*augment.DEFAULT_FAMILIES, "short_turns") == augment.ENCODER_V3_FAMILIES
    rows = augment.generate(families=("short_turns",), n_per_family=200)
    assert len(rows) >= 150 and {r["label"] for r in rows} == {0}
    assert max(len(r["text"]) for r in rows) < 200
    kinds = {r["text"].split()[0].lower() for r in rows}
    assert len(kinds) >= 15  # story, prompting, notification and follow-up turns, not one template
    rules = Guard(Settings(detectors=("obfuscation", "signatures"))).load()
    flagged = [r["text"] for r in rows if rules.scan(r["text"]).action != "allow"]
    assert len(flagged) <= 0.02 * len(rows), flagged


def test_requests_ml_pairs_a_request_with_a_pasted_text_in_another_language() -> None:
    from aimds import Guard, Settings

    assert "requests_ml" not in augment.ENCODER_V3_FAMILIES  # the shipped encoder's data is unchanged
    assert (*augment.ENCODER_V3_FAMILIES, "requests_ml", "meta_questions") == augment.ENCODER_NEXT_FAMILIES
    g = augment.load_grammar()
    for lang in augment._RQML_LANGS:
        assert f"rqml_ask_{lang}" in g.slots and f"rqml_doc_{lang}" in g.slots, lang
    rows = generate_samples(seed=5, n_per_family=300, families=["requests_ml"])["requests_ml"]
    assert len(rows) == 300 and all(r.label == 0 and r.category == "benign" for r in rows)
    assert {r.lang for r in rows} == set(augment._RQML_LANGS)
    scripts = {"ja": ("\u3040", "\u30ff"), "zh": ("\u4e00", "\u9fff"), "ru": ("\u0400", "\u04ff")}
    for r in rows:  # the pasted text is in the row's language, whatever language the ask is in
        if r.lang in scripts:
            lo, hi = scripts[r.lang]
            assert sum(lo <= c <= hi for c in r.text) >= 20, r.text
    rules = Guard(Settings(detectors=("obfuscation", "signatures"))).load()
    flagged = [r.text for r in rows if rules.scan(r.text).action != "allow"]
    assert not flagged, flagged[:3]


def test_meta_questions_ask_about_the_assistant_and_trip_no_rule() -> None:
    from aimds import Guard, Settings

    assert "meta_questions" not in augment.DEFAULT_FAMILIES and "meta_questions" not in augment.ENCODER_V3_FAMILIES
    rows = generate_samples(seed=4, n_per_family=300, families=["meta_questions"])["meta_questions"]
    assert len(rows) == 300 and all(r.label == 0 and r.category == "benign_hard" for r in rows)
    assert 20 <= sum(r.meta["kind"] == "meta_ml" for r in rows) <= 90  # about one in seven in another language
    english = [r.text for r in rows if r.meta["kind"] == "meta"]
    assert all(t[:1].isupper() and "  " not in t and "?" in t for t in english), english[:3]
    rules = Guard(Settings(detectors=("obfuscation", "signatures"))).load()
    flagged = [r.text for r in rows if rules.scan(r.text).action != "allow"]
    assert not flagged, flagged[:3]


@pytest.fixture(scope="module")
def styles_rows() -> dict[str, list[augment.Sample]]:
    return generate_samples(seed=6, families=["styles", "styles_benign"])


def test_style_families_are_opt_in() -> None:
    for name in ("styles", "styles_benign"):
        assert name in FAMILIES
        assert name not in DEFAULT_FAMILIES and name not in ENCODER_V1_FAMILIES
        assert name not in augment.ENCODER_V3_FAMILIES and name not in augment.ENCODER_NEXT_FAMILIES
    assert (*augment.ENCODER_V3_FAMILIES, "styles", "styles_benign") == augment.ENCODER_STYLES_FAMILIES
    assert FAMILIES["styles"].attack and not FAMILIES["styles_benign"].attack
    assert not any(r["source"].startswith("synth:styles") for r in generate(seed=3, n_per_family=5))


def test_every_style_in_both_families(styles_rows: dict[str, list[augment.Sample]]) -> None:
    assert len(augment.STYLES) == 20
    for fam in ("styles", "styles_benign"):
        rows = styles_rows[fam]
        assert len(rows) == FAMILIES[fam].default_n
        counts = {s: 0 for s in augment.STYLES}
        for r in rows:
            counts[r.meta["style"]] += 1
        assert min(counts.values()) >= 10, (fam, counts)  # each style many times, not once
    langs = {r.lang for r in styles_rows["styles"] if r.meta["style"] == "multilingual_other"}
    assert len(langs) >= 8 and "en" not in langs


def test_style_rows_are_well_formed_and_distinct(styles_rows: dict[str, list[augment.Sample]]) -> None:
    attack_categories = set(augment.CATEGORIES) - {"benign", "benign_hard"}
    for fam, label in (("styles", 1), ("styles_benign", 0)):
        for r in styles_rows[fam]:
            assert r.label == label and r.text == r.text.strip() and len(r.text) >= 8
            assert r.category in (attack_categories if label else {"benign_hard"}), r.category
            assert r.meta["family"] == fam and r.meta["style"] in augment.STYLES
            assert "\x00" not in r.text  # every placeholder substituted
    texts = [r.text for rows in styles_rows.values() for r in rows]
    assert len({augment._key(t) for t in texts}) == len(texts)
    assert {r.category for r in styles_rows["styles"]} == attack_categories
    # Skeletons vary: the first five words of a row repeat rarely.
    openings = {" ".join(r.text.split()[:5]).lower() for r in styles_rows["styles"]}
    assert len(openings) >= 0.5 * len(styles_rows["styles"])


def test_style_payloads_hide_in_documents_and_split_fragments_rejoin(
        styles_rows: dict[str, list[augment.Sample]]) -> None:
    hosted = [r for rows in styles_rows.values() for r in rows if "kind" in r.meta]
    assert {r.meta["style"] for r in hosted} == {"web_indirect", "exfil_markdown", "agent_tool"}
    for r in hosted:
        payload = r.meta["payload"]
        assert payload in r.text or json.dumps(payload)[1:-1] in r.text or \
            json.dumps(payload, ensure_ascii=False)[1:-1] in r.text
        assert r.category == ("indirect_injection" if r.label else "benign_hard")
    split = [r for rows in styles_rows.values() for r in rows
             if r.meta["style"] == "split_payload" and "parts" in r.meta]
    assert any(r.label == 1 for r in split) and any(r.label == 0 for r in split)
    for r in split:
        assert " ".join(r.meta["parts"]) == r.meta["payload"] and len(r.meta["parts"]) >= 2
        assert all(p in r.text or json.dumps(p) in r.text for p in r.meta["parts"])
        assert r.meta["payload"] not in r.text  # only the fragments are shown


def test_style_near_misses_trip_few_signature_rules(styles_rows: dict[str, list[augment.Sample]]) -> None:
    from aimds import Guard, Settings

    rules = Guard(Settings(detectors=("obfuscation", "signatures"))).load()
    benign = styles_rows["styles_benign"]
    flagged = [r.text for r in benign if rules.scan(r.text).action != "allow"]
    assert len(flagged) <= 0.03 * len(benign), flagged[:5]


def test_styles_rows_deterministic_per_seed() -> None:
    a = generate(seed=8, n_per_family=60, families=["styles", "styles_benign"])
    assert a == generate(seed=8, n_per_family=60, families=["styles", "styles_benign"])
    b = generate(seed=9, n_per_family=60, families=["styles", "styles_benign"])
    assert len({r["text"] for r in a} & {r["text"] for r in b}) < len(a) // 2
