"""The checks of the hub's arguments, shared by the hub and ``open_hub``."""

from __future__ import annotations

import math

from .._checks import positive
from ._subscription import OVERFLOW_POLICIES, Overflow


def check_channel(channel: object) -> str:
    if not isinstance(channel, str) or not channel:
        raise TypeError(f"a channel is a non-empty str, not {channel!r}")
    if channel[0] == "\x00":  # the brokers' own names start so (presence events)
        raise ValueError(f"a channel may not start with NUL: {channel!r}")
    return channel


def check_buffer(max_buffer: object) -> int:
    if max_buffer == math.inf:
        raise ValueError(f"max_buffer must be a positive whole number, not {max_buffer!r}")
    return int(positive("max_buffer", max_buffer, whole=True))


def check_overflow(overflow: object) -> Overflow:
    for policy in OVERFLOW_POLICIES:
        if overflow == policy:
            return policy
    raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}; not {overflow!r}")
