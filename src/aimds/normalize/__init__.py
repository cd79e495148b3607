"""Normalisation: build the views (folded, de-leeted, de-spaced, decoded) every detector reads."""

from aimds.normalize.views import Limits, Signal, View, Views

__all__ = ["Limits", "Signal", "View", "Views", "normalize"]


def normalize(text: str, limits: Limits | None = None) -> Views:
    """Build all views of ``text`` within ``limits``."""
    from aimds.normalize.pipeline import build_views

    return build_views(text, limits or Limits())
