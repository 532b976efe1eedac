"""Checks of the options users give, made once when an app, a handler, a middleware or a hub
is built: one place for each rule, one wording for each error."""

from __future__ import annotations

import math
from typing import Any


def positive(name: str, value: Any, *, whole: bool = False, unit: str = "") -> Any:
    """Returns ``value`` when it is a positive number (``whole``: a whole one, or infinity).

    Raises:
        ValueError: it is not, named ``name`` (``unit`` says what it counts).
    """
    kind = "whole number" if whole else "number"
    if unit:
        kind = f"{kind} of {unit}"
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value > 0
        or (whole and not (isinstance(value, int) or value == math.inf))
    ):
        raise ValueError(f"{name} must be a positive {kind}, not {value!r}")
    return value
