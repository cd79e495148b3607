"""Placeholder view builder (replaced by the full normaliser)."""

from __future__ import annotations

import unicodedata

from aimds.normalize.views import Limits, View, Views


def build_views(text: str, limits: Limits) -> Views:
    folded = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return Views(original=text, views=(View("original", text), View("folded", folded, tuple(range(len(folded) + 1)))))
