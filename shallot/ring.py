"""shallot 2.0's import path for ``build_server``, kept so 2.0 apps run unchanged."""

from __future__ import annotations

from ._asgi import build_server

__all__ = ["build_server"]
