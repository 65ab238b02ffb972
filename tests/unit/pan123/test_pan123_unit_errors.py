"""Unit tests of the one table from a 123pan answer to the error tree (pure, no I/O)."""

from __future__ import annotations

import pytest

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
    SyncAgentError,
    TokenExpiredError,
    TokenLimitError,
    TransportError,
    VerifyingError,
)
from syncagent.pan123.errors import TOKEN_LIMIT_MESSAGE, from_envelope, from_http_status

LIST = "api/v2/file/list"
TOKEN = "api/v1/access_token"
CREATE = "upload/v2/file/create"

# (code, message, endpoint, expected class)
ENVELOPE_TABLE: list[tuple[int, str, str, type[RemoteError]]] = [
    (401, "token is invalid", LIST, TokenExpiredError),
    (401, TOKEN_LIMIT_MESSAGE, LIST, TokenLimitError),
    (401, "tokens number has exceeded the limit", TOKEN, TokenLimitError),
    (1, "clientSecret is wrong", TOKEN, AuthError),
    (401, "unauthorized", TOKEN, AuthError),
    (1, "clientID或clientSecret错误", TOKEN, AuthError),  # the emulator's words
    (1, "invalid client_id", TOKEN, AuthError),
    # Anything else the token endpoint answers is not about the credentials: not fatal.
    (1, "内部错误", TOKEN, InternalError),
    (5066, "whatever", TOKEN, RemoteNotFoundError),
    (429, "too many requests", TOKEN, RateLimitedError),
    (429, "操作频繁，请稍后再试", LIST, RateLimitedError),
    (20103, "文件正在校验中,请间隔1秒后再试", "upload/v2/file/upload_complete", VerifyingError),
    (5066, "文件不存在", "api/v1/file/detail", RemoteNotFoundError),
    (5113, "流量超限", CREATE, QuotaExceededError),
    (1, "秒传队列已满，请慢一点", CREATE, BusyError),
    (1, "削峰中，稍后重试", CREATE, BusyError),
    (1, "该目录下已经有同名文件夹,无法进行创建", "upload/v1/file/mkdir", RemoteConflictError),
    (1, "文件上传失败", "upload/v2/file/slice", IntegrityError),
    (1, "空间不足", CREATE, QuotaExceededError),
    (1, "内部错误", CREATE, InternalError),
    (1, "something else", CREATE, ApiError),
    (9999, "something new", LIST, ApiError),
    (-1, "negative", LIST, ApiError),
]


@pytest.mark.parametrize(
    ("code", "message", "endpoint", "expected"),
    ENVELOPE_TABLE,
    ids=[f"{row[0]}-{row[3].__name__}-{i}" for i, row in enumerate(ENVELOPE_TABLE)],
)
def test_from_envelope_maps_code_and_message_to_one_class(
    code: int, message: str, endpoint: str, expected: type[RemoteError]
) -> None:
    err = from_envelope(code, message, endpoint=endpoint, trace_id="tr-42", http_status=200)
    assert type(err) is expected
    assert err.code == code
    assert err.endpoint == endpoint
    assert err.trace_id == "tr-42"
    assert err.http_status == 200
    assert message in err.message  # kept (TokenLimitError only adds an explanation)
    assert isinstance(err, RemoteError)
    assert isinstance(err, SyncAgentError)


def test_token_limit_message_explains_the_three_token_limit() -> None:
    err = from_envelope(401, TOKEN_LIMIT_MESSAGE, endpoint=LIST, trace_id="t1")
    assert isinstance(err, TokenLimitError)
    assert err.fatal is True
    assert err.retryable is False
    assert err.message.startswith(TOKEN_LIMIT_MESSAGE)
    assert "3 live access tokens" in err.explained
    assert "reuses one token" in err.explained


@pytest.mark.parametrize("code", [1, 401, 5066, 20103, 5113])
def test_any_non_429_error_on_the_token_endpoint_is_a_fatal_auth_error(code: int) -> None:
    err = from_envelope(code, "clientID or clientSecret invalid", endpoint=TOKEN)
    assert type(err) is AuthError
    assert err.fatal is True
    assert err.retryable is False


def test_429_on_the_token_endpoint_is_retryable_not_fatal() -> None:
    err = from_envelope(429, "slow down", endpoint=TOKEN)
    assert type(err) is RateLimitedError
    assert (err.retryable, err.fatal) == (True, False)


def test_envelope_error_keeps_the_http_status() -> None:
    err = from_envelope(5066, "gone", endpoint=LIST, trace_id="x", http_status=404)
    assert err.http_status == 404
    assert "HTTP 404" in str(err)


@pytest.mark.parametrize(
    ("status", "expected", "retryable"),
    [
        (500, ServerError, True),
        (502, ServerError, True),
        (503, ServerError, True),
        (504, ServerError, True),
        (429, RateLimitedError, True),
        (404, ApiError, False),
        (400, ApiError, False),
        (401, ApiError, False),
    ],
)
def test_from_http_status_without_an_envelope(
    status: int, expected: type[RemoteError], retryable: bool
) -> None:
    err = from_http_status(status, endpoint=LIST, text="<html>Bad Gateway</html>")
    assert type(err) is expected
    assert err.retryable is retryable
    assert err.fatal is False
    assert err.http_status == status
    assert err.endpoint == LIST
    assert err.code == 0
    assert f"HTTP {status}" in err.message
    assert "Bad Gateway" in err.message


def test_from_http_status_truncates_the_body_it_quotes() -> None:
    err = from_http_status(502, endpoint=LIST, text="x" * 5000)
    assert err.message.count("x") == 200
    assert from_http_status(502, endpoint=LIST).message == "HTTP 502 without a 123pan answer"


def test_str_names_endpoint_code_and_trace_id() -> None:
    err = from_envelope(5066, "文件不存在", endpoint="api/v1/file/detail", trace_id="abc-123")
    text = str(err)
    assert text.startswith("文件不存在 [")
    assert "api/v1/file/detail" in text
    assert "code 5066" in text
    assert "trace abc-123" in text
    assert "HTTP" not in text  # 200 is not worth mentioning


def test_str_without_details_is_just_the_message() -> None:
    assert str(ApiError("plain")) == "plain"
    assert str(ServerError("boom", endpoint="e", http_status=503)) == "boom [e, HTTP 503]"


# class -> (retryable, fatal)
FLAGS: list[tuple[type[RemoteError], bool, bool]] = [
    (TransportError, True, False),
    (ServerError, True, False),
    (RateLimitedError, True, False),
    (VerifyingError, True, False),
    (BusyError, True, False),
    (IntegrityError, True, False),
    (TokenExpiredError, False, False),
    (AuthError, False, True),
    (TokenLimitError, False, True),
    (QuotaExceededError, False, True),
    (RemoteNotFoundError, False, False),
    (RemoteConflictError, False, False),
    (ApiError, False, False),
    (RemoteError, False, False),
]


@pytest.mark.parametrize(
    ("cls", "retryable", "fatal"), FLAGS, ids=[row[0].__name__ for row in FLAGS]
)
def test_retryable_and_fatal_flags_per_class(
    cls: type[RemoteError], retryable: bool, fatal: bool
) -> None:
    assert cls.retryable is retryable
    assert cls.fatal is fatal
    err = cls("m", code=7, endpoint="e", trace_id="t")
    assert (err.retryable, err.fatal) == (retryable, fatal)
    assert not (err.retryable and err.fatal)
