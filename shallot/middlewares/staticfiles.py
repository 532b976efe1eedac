"""shallot 2.0's import path for ``wrap_static``, kept so 2.0 apps run unchanged."""

from __future__ import annotations

from .static import wrap_static

__all__ = ["wrap_static"]
