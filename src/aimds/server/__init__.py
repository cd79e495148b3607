"""The AIMDS REST service: ``create_app(settings)`` builds it, ``aimds serve`` runs it.

Imports are lazy so that ``aimds serve`` can configure multiprocess metrics before prometheus_client loads.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServiceSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from aimds.server.app import create_app

        return create_app
    if name == "ServiceSettings":
        from aimds.server.settings import ServiceSettings

        return ServiceSettings
    raise AttributeError(name)
