"""Output-side detectors: canary tokens, system-prompt leakage and exfiltration beacons.

- ``canary`` (both directions): a canary token (:mod:`aimds.respond.canary`) in the text is a
  ``prompt_leak``; in an input it means someone pastes a leaked prompt back.
- ``prompt_leak_output`` (output only, needs ``request.metadata["system_prompt"]``): the response,
  its decoded views and its rot13 / reversed forms compared with the system prompt
  (:mod:`aimds.detect.leak_similarity`).
- ``exfil_output`` (output only): markdown images/links and HTML tags that point at external hosts
  with URLs carrying data (decodable base64/hex, sentences, secrets or PII, a canary).

Instructions aimed at a downstream tool or agent inside a response are left to the pipeline's
normal detectors: ``signatures`` (indirect-injection and exfiltration rules) and the classifiers run
on ``direction=output`` requests as on any other text, so nothing is repeated here.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import re2
import yaml

from aimds.detect.base import Detector, ScanContext, register
from aimds.detect.entities import find_entities
from aimds.detect.evidence import excerpt
from aimds.detect.leak_similarity import LeakWeights, Similarity, compare, list_items_count, profile
from aimds.errors import ConfigError
from aimds.normalize.views import View, Views
from aimds.respond import canary as canaries
from aimds.types import Category, Direction, Finding, Span


def _key_from_options(options: dict[str, Any]) -> bytes | None:
    key = options.get("key")
    if key is not None:
        if isinstance(key, str):
            try:
                key = bytes.fromhex(key)
            except ValueError:
                key = key.encode("utf-8")
        return canaries._check_key(key)
    path = options.get("key_file")
    if path:
        return canaries.load_key(Path(path))
    return None


@register
class CanaryDetector(Detector):
    """Canary tokens from the system prompt appearing in a response (or pasted back into an input).

    Options: ``key`` (bytes, or a hex string) or ``key_file`` (path; hex or raw bytes). With a key, a
    token counts only when its HMAC tag verifies (score 1.0, severity 10), and separators may have
    been mangled. Without a key, any token with the canary shape and a valid check character counts,
    at a lower score (0.6, monitor under the default policy): it could come from another deployment
    or be a copy of a published example.
    """

    name: ClassVar[str] = "canary"
    tier: ClassVar[int] = 1
    categories: ClassVar[tuple[Category, ...]] = (Category.PROMPT_LEAK,)
    tags: ClassVar[tuple[str, ...]] = ("owasp:LLM07:2025", "atlas:AML.T0056", "technique:canary_token")
    cost: ClassVar[int] = 15

    VERIFIED_SCORE: ClassVar[float] = 1.0
    UNVERIFIED_SCORE: ClassVar[float] = 0.6

    def load(self) -> None:
        """Read the key (if any)."""
        if self.loaded:
            return
        self.key = _key_from_options(dict(self.options))
        super().load()

    def version(self) -> str:
        """Whether tokens are verified."""
        return "keyed" if self.key is not None else "keyless"

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """One finding per canary (id, place) found."""
        out = []
        for hit in canaries.find(views, self.key):
            where = "" if hit.form == "plain" else f" ({hit.form})"
            out.append(Finding(
                detector=self.name,
                rule_id="canary.verified" if hit.verified else "canary.unverified",
                category=Category.PROMPT_LEAK,
                score=self.VERIFIED_SCORE if hit.verified else self.UNVERIFIED_SCORE,
                severity=10 if hit.verified else 6,
                span=hit.span,
                evidence=f"canary {hit.id}",
                explanation=f"canary token {hit.id}{where} in the {hit.view} view"
                            + ("" if hit.verified else " (shape only: no key to verify it)"),
                view=hit.view,
                tags=("technique:canary_token",) + (() if hit.form == "plain" else (f"encoding:{hit.form}",)),
            ))
        return out


@cache
def default_leak_weights() -> LeakWeights:
    """The decision surface shipped in ``data/output/leak.yaml`` (tuned by ``benchmarks/output_eval.py --tune``)."""
    raw = yaml.safe_load(resources.files("aimds").joinpath("data/output/leak.yaml").read_text("utf-8"))
    return LeakWeights(**raw["weights"])


def _rot13(text: str) -> str:
    return codecs.encode(text, "rot13")


@register
class PromptLeakOutputDetector(Detector):
    """The response repeats the system prompt: verbatim, in part, paraphrased with its structure,
    translated, or encoded (base64, hex, URL escapes as decoded by the normaliser; rot13 and reversal
    checked here).

    Runs only on ``direction=output`` requests whose ``metadata["system_prompt"]`` is a non-empty
    string. Options: ``weights`` (mapping overriding :class:`LeakWeights` fields). Cost is linear;
    each view is read up to ``leak_similarity.MAX_WORDS`` words.
    """

    name: ClassVar[str] = "prompt_leak_output"
    tier: ClassVar[int] = 1
    categories: ClassVar[tuple[Category, ...]] = (Category.PROMPT_LEAK,)
    tags: ClassVar[tuple[str, ...]] = ("owasp:LLM07:2025", "atlas:AML.T0056")
    cost: ClassVar[int] = 150

    def load(self) -> None:
        """Read the tuned weights."""
        if self.loaded:
            return
        base = default_leak_weights()
        extra = dict(self.options.get("weights") or {})
        unknown = set(extra) - set(LeakWeights.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown prompt_leak_output weights: {sorted(unknown)}")
        self.weights = LeakWeights(**{**{f: getattr(base, f) for f in LeakWeights.__dataclass_fields__}, **extra})
        super().load()

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """At most one finding: the view that repeats the prompt most."""
        request = context.request
        prompt = request.metadata.get("system_prompt") if request.metadata else None
        if request.direction is not Direction.OUTPUT or not isinstance(prompt, str) or not prompt.strip():
            return []
        return self.compare(views, prompt)

    def compare(self, views: Views, prompt: str, *, plain: bool = True) -> list[Finding]:
        """The leak finding for ``views`` against ``prompt`` (no direction check; the stream scanner calls it,
        with ``plain=False``: the folded text as it is is left out, only its decoded and transformed forms)."""
        prof = profile(prompt)
        best: tuple[float, Similarity, View, str] | None = None
        for view, text, how, items in self._candidates(views, plain=plain):
            sim = compare(prof, text, list_items=items)
            score = self.weights.score(sim)
            if best is None or score > best[0]:
                best = (score, sim, view, how)
            if score >= 1.0:
                break
        if best is None or best[0] < 0.8:
            return []
        score, sim, view, how = best
        span_v = sim.run_span if sim.run >= 3 else (sim.token_span or (0, len(view.text)))
        if how == "reversed":
            n = len(view.text)
            span_v = (n - span_v[1], n - span_v[0])
        start, end = view.to_original(*span_v)
        name = view.name if not view.source else f"{view.name}:{view.source}"
        if how != "plain":
            name += f"+{how}"
        why = (f"response repeats the system prompt: longest verbatim run {sim.run} words, "
               f"{sim.containment:.0%} of its word shingles, {sim.distinctive_count} distinctive tokens "
               f"({sim.distinctive:.0%}), list structure {sim.structure:.2f}; in the {name} view")
        ev_text = view.text if how == "plain" else (_rot13(view.text) if how == "rot13" else view.text[::-1])
        return [Finding(
            detector=self.name, rule_id="prompt_leak.similarity", category=Category.PROMPT_LEAK,
            score=score, severity=9, span=Span(start, end),
            evidence=excerpt(ev_text, *span_v), explanation=why, view=name,
            tags=() if how == "plain" and not view.source else ("technique:hidden_in_encoding",),
        )]

    @staticmethod
    def _candidates(views: Views, *, plain: bool = True) -> list[tuple[View, str, str, int | None]]:
        """(view, text to compare, transform, list items): folded, decoded, then rot13 / reversed forms.

        The whole folded text is compared in rot13 or reversed form only when the normaliser saw such
        a segment (its decoded views keep only the stretches that read as English; the canary and the
        distinctive tokens may sit outside them). Without ``plain`` (the stream scanner's windows, where
        cost per window matters) the rot13 and reversed stretches themselves are left out: the whole
        text in that form holds everything they hold (one comparison instead of one per stretch).
        """
        folded = views.get("folded")
        out: list[tuple[View, str, str, int | None]] = []
        if folded is not None and plain:
            out.append((folded, folded.text, "plain", list_items_count(views.original)))
        whole = set() if plain or folded is None else {"rot13", "reversed"}
        out.extend((v, v.text, "plain", None) for v in views.views if v.name == "decoded" and v.source not in whole)
        if folded is not None:
            sources = {v.source.split(">")[-1] for v in views.views if v.name == "decoded"}
            if sources & {"rot13"} or any(s.startswith("caesar") for s in sources):
                out.append((folded, _rot13(folded.text), "rot13", None))
            if sources & {"reversed", "reversed_words"}:
                out.append((folded, folded.text[::-1], "reversed", None))
        return out


# --- exfiltration beacons -------------------------------------------------------------------------

#: URLs are read up to this many characters (the pattern itself is unbounded: a bounded repeat of 1,000 made
#: RE2's DFA run out of memory on long markdown and fall back to the slower NFA).
MAX_URL = 1000
_URL = r"(?:https?:)?//[^\s)<>\"'`]+"
_MD_IMAGE = re2.compile(r"!\[[^\]\n]{0,300}\]\(\s*<?(" + _URL + ")")
_MD_LINK = re2.compile(r"(?:^|[^!])\[[^\]\n]{0,300}\]\(\s*<?(" + _URL + ")")
_MD_REF = re2.compile(r"(?m)^[ \t]{0,3}\[[^\]\n]{1,100}\]:[ \t]*<?(" + _URL + ")")
_HTML = re2.compile(r"(?i)<\s*(img|iframe|script|link|embed|object|source|video|audio|input|a|form)\b[^>]{0,1000}?"
                    r"\b(?:src|href|data|action|poster|srcset)\s*=\s*[\"']?(" + _URL + ")")
#: Tags a client fetches on render, without a click.
AUTO_LOAD = frozenset({"md_image", "img", "iframe", "script", "link", "embed", "object", "source", "video",
                       "audio", "input"})
_B64_RUN = re2.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re2.compile(r"(?:[0-9a-fA-F]{2}){8,}")
_WORDS = re2.compile(r"[\pL]{2,}")


def _printable(data: bytes) -> bool:
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return len(s) >= 8 and sum(c.isprintable() or c.isspace() for c in s) / len(s) > 0.95 \
        and sum(c.isalpha() or c == " " for c in s) / len(s) > 0.6


def _decodes_to_text(value: str) -> bool:
    """Whether a URL part is base64 or hex of readable text."""
    for m in _HEX_RUN.finditer(value):
        try:
            if _printable(binascii.unhexlify(m.group(0))):
                return True
        except (binascii.Error, ValueError):
            pass
    for m in _B64_RUN.finditer(value):
        run = m.group(0).rstrip("=")
        for alt in (False, True):
            try:
                raw = (base64.urlsafe_b64decode if alt else base64.b64decode)(run + "=" * (-len(run) % 4))
            except (binascii.Error, ValueError):
                continue
            if _printable(raw):
                return True
    return False


def _host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    return any(host == a or host.endswith("." + a) for a in allowed)


def url_payload(url: str) -> tuple[float, str]:
    """How strongly ``url`` carries data, in [0, 1], and why ("" when it carries none)."""
    try:
        parts = urlsplit(url if "://" in url else "https:" + url)
    except ValueError:
        return 0.0, ""
    values = [v for _, v in parse_qsl(parts.query, keep_blank_values=True)] + [unquote_plus(parts.fragment)]
    values += [unquote_plus(seg) for seg in parts.path.split("/") if seg]
    labels = [lab for lab in (parts.hostname or "").split(".")[:-2] if len(lab) >= 20]
    strongest, why = 0.0, ""
    for value in values + labels:
        if not value:
            continue
        if canaries.find(value):
            return 1.0, "a canary token"
        ents = find_entities(value[:2000])
        if ents:
            return 1.0, f"{ents[0].type.replace('_', ' ')}"
        if _decodes_to_text(value):
            strongest, why = max((strongest, why), (0.9, "encoded text"))
        elif len(_WORDS.findall(value)) >= 4 and (" " in value or "+" in value):
            strongest, why = max((strongest, why), (0.8, "a sentence"))
        elif len(value) >= 32:
            strongest, why = max((strongest, why), (0.3, "a long opaque value"))
    if not why and parts.query:
        return 0.1, "a query string"
    return strongest, why


@register
class ExfilOutputDetector(Detector):
    """Markdown images and links, reference links, and HTML tags (img, iframe, script, link, a, form …)
    in a response that point at an external host with a URL carrying data: base64/hex of readable
    text, a sentence, a secret, PII or a canary token. Images and other auto-loading tags leak on
    render (score up to 1.0); links need a click (lower scores).

    Runs on ``direction=output``. Options: ``allowed_hosts`` (domains, subdomains included, never
    reported), ``max_urls`` (default 200: URLs examined per text).
    """

    name: ClassVar[str] = "exfil_output"
    tier: ClassVar[int] = 1
    categories: ClassVar[tuple[Category, ...]] = (Category.TOOL_MISUSE,)
    tags: ClassVar[tuple[str, ...]] = ("owasp:LLM02:2025", "owasp:LLM06:2025", "atlas:AML.T0053",
                                       "technique:markdown_exfiltration")
    cost: ClassVar[int] = 30

    def load(self) -> None:
        """Read the options."""
        if self.loaded:
            return
        self.allowed = tuple(h.lower().lstrip(".") for h in self.options.get("allowed_hosts", ()))
        self.max_urls = int(self.options.get("max_urls", 200))
        super().load()

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """One finding per beacon URL that carries data."""
        if context.request.direction is not Direction.OUTPUT:
            return []
        return self.beacons(views.original)

    def beacons(self, text: str, base: int = 0) -> list[Finding]:
        """Beacon findings in ``text`` (spans shifted by ``base``; the stream scanner calls this on windows)."""
        out: list[Finding] = []
        seen = 0
        for kind, rx, group in (("md_image", _MD_IMAGE, 1), ("md_link", _MD_LINK, 1), ("md_ref", _MD_REF, 1),
                                ("html", _HTML, 2)):
            for m in rx.finditer(text):
                seen += 1
                if seen > self.max_urls:
                    return out
                url = m.group(group)[:MAX_URL].rstrip(".,;:!?")
                tag = m.group(1).lower() if kind == "html" else kind
                f = self._finding(tag, url, m.start(group) + base, m.start(group) + len(url) + base)
                if f is not None:
                    out.append(f)
        return out

    def _finding(self, tag: str, url: str, start: int, end: int) -> Finding | None:
        host = (urlsplit(url if "://" in url else "https:" + url).hostname or "").lower()
        if not host or _host_allowed(host, self.allowed):
            return None
        strength, why = url_payload(url)
        if strength < 0.3:
            return None
        auto = tag in AUTO_LOAD
        score = strength * (0.95 if auto else 0.6) if strength < 1.0 else (1.0 if auto else 0.85)
        what = "markdown image" if tag == "md_image" else ("markdown link" if tag in ("md_link", "md_ref")
                                                           else f"<{tag}> tag")
        return Finding(
            detector=self.name, rule_id=f"exfil.{'auto' if auto else 'link'}", category=Category.TOOL_MISUSE,
            score=round(score, 4), severity=9 if auto and strength >= 0.8 else 5, span=Span(start, end),
            evidence=excerpt(url, 0, len(url)),
            explanation=f"{what} to external host {host} whose URL carries {why}"
                        + (" (fetched on render, no click needed)" if auto else " (needs a click)"),
            tags=("technique:markdown_exfiltration",),
        )
