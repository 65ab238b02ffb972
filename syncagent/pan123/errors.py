"""The one table from a 123pan answer to an exception of syncagent's error tree.

``from_envelope`` is the only place that decides what a non-zero ``code`` means; it keeps the
code, message, endpoint and ``x-traceID`` on the exception. Only the token endpoint's words about
the credentials make a fatal :class:`~syncagent.errors.AuthError`; its other failures are
transient like anyone's. Pure.
"""

from __future__ import annotations

from syncagent.errors import (
    ApiError,
    AuthError,
    BusyError,
    IntegrityError,
    InternalError,
    QuotaExceededError,
    RateLimitedError,
    RemoteConflictError,
    RemoteError,
    RemoteNotFoundError,
    ServerError,
    TokenExpiredError,
    TokenLimitError,
    VerifyingError,
)

__all__ = ["TOKEN_LIMIT_MESSAGE", "from_envelope", "from_http_status"]

TOKEN_LIMIT_MESSAGE = "tokens number has exceeded the limit"

_BY_CODE: dict[int, type[RemoteError]] = {
    429: RateLimitedError,
    5066: RemoteNotFoundError,
    5113: QuotaExceededError,
    20103: VerifyingError,
}
# Code 1 is "internal / generic"; its message tells the cases apart.
_CODE_1_MESSAGES: list[tuple[str, type[RemoteError]]] = [
    ("请慢一点", BusyError),
    ("削峰", BusyError),
    ("同名", RemoteConflictError),
    ("无法作为目录", RemoteConflictError),  # a file where the path needs a folder
    ("文件上传失败", IntegrityError),
    ("空间不足", QuotaExceededError),
    ("内部错误", InternalError),
]
_TOKEN_ENDPOINT = "api/v1/access_token"
# What the token endpoint says about wrong credentials (the exact code is not documented; the
# message names them). Anything else it answers (code 1 "内部错误", 429, 5xx) is transient.
_CREDENTIAL_WORDS = (
    "clientid",
    "client_id",
    "secret",
    "credential",
    "凭证",
    "密钥",
    "unauthorized",
)


def _bad_credentials(code: int, message: str) -> bool:
    lowered = message.lower()
    return code == 401 or any(word in lowered for word in _CREDENTIAL_WORDS)


def from_envelope(
    code: int, message: str, *, endpoint: str, trace_id: str = "", http_status: int = 200
) -> RemoteError:
    """The exception for a non-zero ``code``."""
    cls: type[RemoteError]
    if TOKEN_LIMIT_MESSAGE in message:
        cls = TokenLimitError  # its hint says what the limit is and what to do
    elif endpoint == _TOKEN_ENDPOINT and _bad_credentials(code, message):
        cls = AuthError
    elif code == 401:
        cls = TokenExpiredError
    elif code in _BY_CODE:
        cls = _BY_CODE[code]
    else:
        cls = next((c for text, c in _CODE_1_MESSAGES if text in message), ApiError)
    if http_status >= 500 and not cls.retryable:
        cls = ServerError  # the service itself failed: the same call may succeed later
    return cls(message, code=code, endpoint=endpoint, trace_id=trace_id, http_status=http_status)


def from_http_status(status: int, *, endpoint: str, text: str = "") -> RemoteError:
    """The exception for an HTTP error that carried no JSON envelope."""
    message = f"HTTP {status} without a 123pan answer" + (f": {text[:200]}" if text else "")
    if status == 429:
        return RateLimitedError(message, endpoint=endpoint, http_status=status)
    if status >= 500:
        return ServerError(message, endpoint=endpoint, http_status=status)
    return ApiError(message, endpoint=endpoint, http_status=status)
