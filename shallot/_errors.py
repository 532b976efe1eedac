"""The exceptions shallot raises, in one tree::

    Exception
     └── ShallotError
          ├── WSDisconnect         the websocket client went away (carries the close code)
          └── ASGIProtocolError    the server broke the ASGI contract

App misuse (sending after a close, say) raises ``RuntimeError`` naming the state and the
message; bad client input never raises, it becomes a 4xx response.
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup


class ShallotError(Exception):
    """Base class of every exception shallot defines."""


class WSDisconnect(ShallotError):
    """The websocket client closed the connection; ``code`` is its close code.

    ``WSDisconnect("Good Bye")``, a reason alone as shallot 2.0 apps raise it (2.0's exception
    had no code), keeps the default code, 1005 (no code), and takes the text as its reason.
    """

    def __init__(self, code: int | str = 1005, reason: str = "") -> None:
        if isinstance(code, str):  # shallot 2.0's WSDisconnect(message)
            reason = reason or code
            code = 1005
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"WSDisconnect(code={self.code!r}, reason={self.reason!r})"


class ASGIProtocolError(ShallotError):
    """The server sent a message the ASGI specification does not allow at this point."""


def single_exception(error: BaseException) -> BaseException:
    """Returns the one exception inside ``error`` when it is a group of one (a task group
    wraps a lone error; nested groups too), so users see their own ``ValueError``; otherwise
    ``error`` itself. The one place shallot unwraps a group."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
