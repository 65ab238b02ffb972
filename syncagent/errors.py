"""The one exception tree of syncagent.

Every error the project raises on purpose derives from :class:`SyncAgentError`. Foreign
exceptions (``OSError``, ``sqlite3.Error``, ``requests.*``...) are translated into this tree once,
at the boundary where they happen, so nothing above that boundary catches a foreign type.

::

    SyncAgentError                    base; ``message`` is safe to show (never holds a secret)
    ├── ConfigError                   every problem of a configuration at once, with key paths
    ├── LedgerError                   the ledger database cannot be opened, read, written or
    │   │                             upgraded (or stayed locked by another program too long)
    │   ├── LedgerCorruptError        the ledger file is damaged (not a database, malformed)
    │   └── LedgerUnavailableError    a database server ledger cannot be reached (down,
    │                                 restarting, connection lost) after retrying for a while
    ├── StateError                    the state dir (lock, token, activity) cannot be used
    ├── StateLockedError              another syncagent already works on this state dir
    ├── CatalogError                  a catalog in the cloud is torn, foreign or too new
    ├── Interrupted                   work stopped by a shutdown; it resumes on the next start
    ├── LocalFileError                one local file cannot be uploaded (per item; carry on)
    │   ├── UnsupportedFileError      0 bytes, over 10 GB: refused before any request
    │   └── FileChangedError          size/mtime changed while it was hashed or sent
    ├── RemoteError                   anything from the 123pan side; ``retryable``/``fatal``
    │   │                             class flags; keeps code, message, endpoint, trace_id
    │   ├── TransportError      (r)   connection refused/reset/timeout
    │   ├── CertificateError    (f)   the server's TLS certificate is not trusted
    │   ├── ServerError         (r)   HTTP 5xx or a body that is not the JSON envelope
    │   ├── RateLimitedError    (r)   code 429 (retried for a time budget, not a count)
    │   ├── InternalError       (r)   code 1 "内部错误" (retried for a time budget, not a count)
    │   ├── VerifyingError      (r)   code 20103: still verifying, ask again later
    │   ├── BusyError           (r)   code 1 "秒传队列…请慢一点": queued, slow down
    │   ├── TokenExpiredError         code 401: refresh the token once and replay
    │   ├── AuthError           (f)   bad clientID/clientSecret
    │   ├── TokenLimitError     (f)   "tokens number has exceeded the limit"
    │   ├── QuotaExceededError  (f)   no space / traffic left
    │   ├── RemoteNotFoundError       5066: the file or folder ID is gone
    │   ├── RemoteConflictError       the name is taken (e.g. mkdir of an existing folder)
    │   ├── IntegrityError      (r)   uploaded content does not match (size/etag, verify failed)
    │   └── ApiError                  any other non-zero code
    └── EmulatorError                 the local 123pan emulator could not start or keep running
        ├── EmulatorRejection         a request the emulator answers with a business error
        │                             (code, message, HTTP status); control flow inside the
        │                             emulator, turned into a ``{code, message}`` envelope
        └── MultipartError            a request body that is not valid multipart/form-data

This module imports only the standard library.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ApiError",
    "AuthError",
    "BusyError",
    "CatalogError",
    "ConfigError",
    "EmulatorError",
    "EmulatorRejection",
    "FileChangedError",
    "IntegrityError",
    "InternalError",
    "Interrupted",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerUnavailableError",
    "LocalFileError",
    "MultipartError",
    "QuotaExceededError",
    "RateLimitedError",
    "RemoteConflictError",
    "RemoteError",
    "RemoteNotFoundError",
    "ServerError",
    "StateError",
    "StateLockedError",
    "SyncAgentError",
    "TokenExpiredError",
    "TokenLimitError",
    "TransportError",
    "UnsupportedFileError",
    "VerifyingError",
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
    :param source: the file they were found in (named in the message), if any.
    """

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(
            f"invalid configuration{where}:\n" + "\n".join(f"  - {p}" for p in problems)
        )


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


class LedgerError(SyncAgentError):
    """The ledger database cannot be opened, read, written or upgraded."""


class LedgerCorruptError(LedgerError):
    """The ledger file is damaged: SQLite says it is malformed or not a database."""


class LedgerUnavailableError(LedgerError):
    """The ledger's database server cannot be reached (stopped, restarting, the connection
    cut): nothing is wrong with the ledger itself, and the same work succeeds once it is
    back. Raised after retrying for a while, or at once when a connection is lost in the
    middle of a transaction (which the server rolled back).

    ``waited``: True once the retries ran out; False when a connection was lost inside a
    transaction, which the caller may run again whole if it is idempotent.
    """

    waited: bool = True


class StateError(SyncAgentError):
    """The state directory (agent lock, access token) cannot be used: read-only, full, a
    file in the way. The message names the path; it is never blamed on a file being backed up.
    """


class CatalogError(SyncAgentError):
    """A catalog object in the cloud cannot be read (torn, not a catalog, a newer format)."""


class StateLockedError(SyncAgentError):
    """Another syncagent (an agent, or a sync) already works on this state dir."""


class Interrupted(SyncAgentError):
    """Work stopped by a shutdown (SIGTERM); nothing is lost, it resumes on the next start."""


class LocalFileError(SyncAgentError):
    """One local file cannot be uploaded; the rest carries on.

    :param path: the local path concerned.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class UnsupportedFileError(LocalFileError):
    """A file 123pan cannot take (0 bytes, over the size limit): refused before any request."""


class FileChangedError(LocalFileError):
    """The file changed while it was being hashed or uploaded; nothing is recorded as done."""


class RemoteError(SyncAgentError):
    """An error from the 123pan side.

    ``retryable``: the same call may succeed later (the HTTP layer retries it with backoff).
    ``fatal``: nothing will work until a person acts (credentials, quota): stop the pass.

    :param code: the envelope's business code (0 when there was no envelope).
    :param endpoint: the endpoint name, e.g. ``upload/v2/file/create``.
    :param trace_id: the envelope's ``x-traceID``, for support tickets.
    :param http_status: the HTTP status, when it was not 200.
    """

    retryable: ClassVar[bool] = False
    # Retried for as long as the retry policy's time budget lasts, however many tries: the
    # answer only says "later" (a burst of 429s must not use up a file's tries).
    retried_by_time: ClassVar[bool] = False
    fatal: ClassVar[bool] = False
    hint: ClassVar[str] = ""  # what a person should do (fatal errors)

    def __init__(
        self,
        message: str,
        *,
        code: int = 0,
        endpoint: str = "",
        trace_id: str = "",
        http_status: int = 200,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.endpoint = endpoint
        self.trace_id = trace_id
        self.http_status = http_status

    def __str__(self) -> str:
        details = [self.endpoint] if self.endpoint else []
        if self.code:
            details.append(f"code {self.code}")
        if self.http_status != 200:
            details.append(f"HTTP {self.http_status}")
        if self.trace_id:
            details.append(f"trace {self.trace_id}")
        return f"{self.message} [{', '.join(details)}]" if details else self.message

    @property
    def explained(self) -> str:
        """The error with what to do about it, for a person (123pan's words kept)."""
        return f"{self.hint} (123pan said: {self})" if self.hint else str(self)


class TransportError(RemoteError):
    """The connection failed (refused, reset, timed out) before an answer arrived."""

    retryable = True


class CertificateError(RemoteError):
    """The server's TLS certificate could not be verified: no retry makes it trusted."""

    fatal = True
    hint = (
        "the 123pan server's TLS certificate is not trusted: if a proxy or a local emulator "
        "uses its own CA, point REQUESTS_CA_BUNDLE at that CA's certificate file"
    )


class ServerError(RemoteError):
    """HTTP 5xx, or an answer that is not the JSON envelope."""

    retryable = True


class RateLimitedError(RemoteError):
    """Code 429: too many requests for this endpoint."""

    retryable = True
    retried_by_time = True


class InternalError(RemoteError):
    """Code 1 "内部错误": 123pan failed inside; the same call usually works a moment later."""

    retryable = True
    retried_by_time = True


class VerifyingError(RemoteError):
    """Code 20103: the upload is still being verified; ask again after about a second."""

    retryable = True


class BusyError(RemoteError):
    """Code 1 with "请慢一点": the request was queued (秒传 queue); retry later."""

    retryable = True


class TokenExpiredError(RemoteError):
    """Code 401: the access token is invalid or expired; refresh once and replay."""


class AuthError(RemoteError):
    """The clientID/clientSecret were refused."""

    fatal = True
    hint = (
        "123pan refused the client ID or secret: check PAN123_CLIENT_ID and "
        "PAN123_CLIENT_SECRET (or credentials: in sync.yaml)"
    )


class TokenLimitError(RemoteError):
    """123pan allows three live tokens per client, and this client has hit the limit."""

    fatal = True
    hint = (
        "123pan allows 3 live access tokens per client ID and this one has reached the limit "
        "(another program or another copy of syncagent is using it); syncagent keeps and "
        "reuses one token: stop the other user or wait for its tokens to expire"
    )


class QuotaExceededError(RemoteError):
    """No space or traffic left on the account."""

    fatal = True
    hint = "the 123pan account has no space or traffic left: free some, or upgrade it"


class RemoteNotFoundError(RemoteError):
    """Code 5066: the file or folder ID does not exist (any more)."""


class RemoteConflictError(RemoteError):
    """The name is already taken in that folder."""


class IntegrityError(RemoteError):
    """What 123pan stored does not match the local file (size, etag, failed verification)."""

    retryable = True


class ApiError(RemoteError):
    """Any other non-zero code."""
