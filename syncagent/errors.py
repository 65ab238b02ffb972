"""The one exception tree of syncagent.

Every error the project raises on purpose derives from :class:`SyncAgentError`. Foreign
exceptions (``OSError``, ``sqlite3.Error``, ``requests.*``...) are translated into this tree once,
at the boundary where they happen, so nothing above that boundary catches a foreign type.

::

    SyncAgentError                    base; ``message`` is safe to show (never holds a secret)
    ├── ConfigError                   every problem of a configuration at once, with key paths
    └── EmulatorError                 the local 123pan emulator could not start or keep running
        ├── EmulatorRejection         a request the emulator answers with a business error
        │                             (code, message, HTTP status); control flow inside the
        │                             emulator, turned into a ``{code, message}`` envelope
        └── MultipartError            a request body that is not valid multipart/form-data

This module imports only the standard library.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EmulatorError",
    "EmulatorRejection",
    "MultipartError",
    "SyncAgentError",
]


class SyncAgentError(Exception):
    """Base of every error syncagent raises on purpose.

    :param message: a human-readable explanation, safe to log and print.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(SyncAgentError):
    """A configuration (file, flags or environment) is wrong.

    :param problems: one entry per problem, each naming the key it is about.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class EmulatorError(SyncAgentError):
    """The local 123pan emulator cannot do what was asked (bad data dir, port in use...)."""


class EmulatorRejection(EmulatorError):
    """A request the emulator refuses, as the real service would.

    :param code: the business ``code`` of the envelope (0 is never used here).
    :param message: the envelope's ``message``.
    :param http_status: the HTTP status line to send; business errors use 200.
    """

    def __init__(self, code: int, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class MultipartError(EmulatorError):
    """A ``multipart/form-data`` body that cannot be parsed."""
