"""Unit tests of ``HttpTransport`` with a scripted transport adapter: no sockets, no sleeping.

A ``requests`` adapter mounted on the transport's session answers each request from a script
(a response, or an exception to raise) and records what was sent.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Mapping
from typing import IO, Any

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from syncagent.errors import (
    InternalError,
    RateLimitedError,
    RemoteError,
    RemoteNotFoundError,
    ServerError,
    TokenExpiredError,
    TransportError,
    VerifyingError,
)
from syncagent.pan123.endpoints import ENDPOINTS
from syncagent.pan123.http import FormFile, HttpTransport, RetryPolicy
from syncagent.pan123.ratelimit import Pacer

LIST = ENDPOINTS["api/v2/file/list"]
CREATE = ENDPOINTS["upload/v2/file/create"]
SLICE = ENDPOINTS["upload/v2/file/slice"]
BASE = "http://api.test"


class Reply:
    """One scripted HTTP answer."""

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {"Content-Type": "application/json"})


def envelope(code: int = 0, data: Any = None, message: str = "ok", trace: str = "") -> Reply:
    payload: dict[str, Any] = {"code": code, "message": message, "data": data}
    if trace:
        payload["x-traceID"] = trace
    return Reply(200, json.dumps(payload).encode())


Step = Reply | Exception


class Sent:
    """What the adapter saw for one request."""

    def __init__(self, request: requests.PreparedRequest, body: bytes, timeout: Any) -> None:
        self.method = request.method
        self.url = request.url or ""
        self.headers = dict(request.headers)
        self.body = body
        self.timeout = timeout


class ScriptedAdapter(BaseAdapter):
    """Answers requests from a script, in order; fails the test when the script runs out."""

    def __init__(self, *steps: Step) -> None:
        super().__init__()
        self.steps = list(steps)
        self.sent: list[Sent] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        raw: Any = request.body
        if hasattr(raw, "read"):
            body = raw.read()  # a streamed multipart encoder
        elif isinstance(raw, str):
            body = raw.encode()
        else:
            body = raw or b""
        self.sent.append(Sent(request, bytes(body), timeout))
        assert self.steps, f"unexpected extra request to {request.url}"
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        response = requests.Response()
        response.status_code = step.status
        response._content = step.body
        response.headers = CaseInsensitiveDict(step.headers)
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


class RecordingPacer(Pacer):
    """An unlimited pacer that remembers what it was asked."""

    def __init__(self) -> None:
        super().__init__({})
        self.acquired: list[str] = []
        self.penalized: list[str] = []

    def acquire(self, endpoint: str) -> float:
        self.acquired.append(endpoint)
        return 0.0

    def penalize(self, endpoint: str) -> None:
        self.penalized.append(endpoint)


class MaxRandom(random.Random):
    """Jitter that always picks the upper bound, to expose the un-jittered backoff."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Harness:
    def __init__(
        self,
        *steps: Step,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        pacer: Pacer | None = None,
        then_sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.adapter = ScriptedAdapter(*steps)
        self.pacer = pacer or RecordingPacer()
        self.sleeps: list[float] = []
        self._then_sleep = then_sleep
        self.transport = HttpTransport(
            BASE,
            self.pacer,
            retry=policy or RetryPolicy(attempts=4, base=0.5, cap=20.0),
            timeout=(3.0, 7.0),
            sleep=self._sleep,
            rng=rng or random.Random(7),
        )
        self.transport._session.mount("http://", self.adapter)

    def _sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        if self._then_sleep is not None:
            self._then_sleep(delay)

    @property
    def sent(self) -> list[Sent]:
        return self.adapter.sent


def test_envelope_is_decoded_and_data_returned() -> None:
    h = Harness(envelope(data={"fileList": [], "lastFileId": -1}))
    data = h.transport.call(LIST, params={"parentFileId": 0, "limit": 100})
    assert data == {"fileList": [], "lastFileId": -1}
    assert len(h.sent) == 1
    sent = h.sent[0]
    assert sent.method == "GET"
    assert sent.url == f"{BASE}/api/v2/file/list?parentFileId=0&limit=100"
    assert sent.timeout == (3.0, 7.0)
    assert h.sleeps == []
    assert h.pacer.acquired == ["api/v2/file/list"]  # type: ignore[attr-defined]


def test_json_body_is_sent_and_base_overrides_the_host() -> None:
    h = Harness(envelope(data={"reuse": True}))
    got = h.transport.call(CREATE, body={"filename": "a", "size": 3}, base="http://up.test/")
    assert got == {"reuse": True}
    assert h.sent[0].method == "POST"
    assert h.sent[0].url == "http://up.test/upload/v2/file/create"
    assert json.loads(h.sent[0].body) == {"filename": "a", "size": 3}


def test_platform_header_is_sent_on_every_request() -> None:
    h = Harness(
        envelope(429, message="slow"),
        envelope(data=1),
        envelope(data=2),
        envelope(data=3),
    )
    h.transport.call(LIST, params={"limit": 1})
    h.transport.call(CREATE, body={"x": 1}, headers=lambda: {"Authorization": "Bearer t"})
    h.transport.call(
        SLICE, base="http://up.test", form={"a": "b"}, file=FormFile("slice", "s", _opener(b"x"))
    )
    assert len(h.sent) == 4
    for sent in h.sent:
        assert sent.headers["Platform"] == "open_platform"
        assert sent.headers["User-Agent"].startswith("syncagent/")


def test_error_envelope_keeps_code_message_endpoint_and_trace_id() -> None:
    h = Harness(envelope(5066, message="文件不存在", trace="trace-9"))
    with pytest.raises(RemoteNotFoundError) as info:
        h.transport.call(LIST)
    err = info.value
    assert (err.code, err.message, err.endpoint, err.trace_id) == (
        5066,
        "文件不存在",
        "api/v2/file/list",
        "trace-9",
    )
    assert len(h.sent) == 1  # not retryable: sent once
    assert h.sleeps == []


def test_token_expired_is_not_retried_at_this_layer() -> None:
    h = Harness(envelope(401, message="token invalid"))
    with pytest.raises(TokenExpiredError):
        h.transport.call(LIST)
    assert len(h.sent) == 1
    assert h.sleeps == []


def test_retryable_errors_are_retried_until_success() -> None:
    h = Harness(
        envelope(20103, message="verifying"),
        Reply(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"}),
        requests.ConnectionError("reset"),
        envelope(data={"ok": True}),
    )
    assert h.transport.call(CREATE, body={}) == {"ok": True}
    assert len(h.sent) == 4
    assert len(h.sleeps) == 3


def test_retries_stop_after_policy_attempts_and_raise_the_last_error() -> None:
    h = Harness(*[envelope(20103, message="verifying")] * 6, policy=RetryPolicy(attempts=6))
    with pytest.raises(VerifyingError) as info:
        h.transport.call(CREATE, body={})
    assert info.value.code == 20103
    assert len(h.sent) == 6
    assert len(h.sleeps) == 5  # no sleep after the last attempt


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(attempts=7, base=0.5, cap=4.0)
    h = Harness(*[envelope(1, message="请慢一点")] * 7, policy=policy, rng=MaxRandom())
    with pytest.raises(RemoteError):
        h.transport.call(CREATE, body={})
    assert h.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_backoff_is_jittered_within_the_bounds_and_reproducible_with_a_seed() -> None:
    policy = RetryPolicy(attempts=8, base=0.5, cap=4.0)

    def run(seed: int) -> list[float]:
        steps = [envelope(20103, message="verifying")] * 8
        h = Harness(*steps, policy=policy, rng=random.Random(seed))
        with pytest.raises(VerifyingError):
            h.transport.call(LIST)
        return h.sleeps

    first = run(1)
    bounds = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert len(first) == len(bounds)
    for delay, bound in zip(first, bounds, strict=True):
        assert 0.01 <= delay <= bound
    assert first != bounds  # jittered: not simply the bound
    assert len(set(first)) == len(first)
    assert run(1) == first  # same seed, same delays
    assert run(2) != first


def test_non_json_200_body_is_a_server_error() -> None:
    h = Harness(Reply(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}))
    with pytest.raises(ServerError) as info:
        h.transport.call(LIST, retry=False)
    assert info.value.endpoint == "api/v2/file/list"
    assert "not a 123pan JSON envelope" in info.value.message
    assert len(h.sent) == 1


@pytest.mark.parametrize(
    "body", [b"[1, 2]", b'{"message": "no code"}', b"", b"\xff\xfe", b"null"], ids=repr
)
def test_a_200_that_is_not_an_envelope_is_a_retryable_server_error(body: bytes) -> None:
    h = Harness(Reply(200, body), envelope(data="fine"))
    assert h.transport.call(LIST) == "fine"
    assert len(h.sent) == 2


def test_502_html_page_is_a_server_error_and_retried() -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    h = Harness(*[Reply(502, page, {"Content-Type": "text/html"})] * 3, policy=RetryPolicy(3))
    with pytest.raises(ServerError) as info:
        h.transport.call(LIST)
    assert info.value.http_status == 502
    assert "502 Bad Gateway" in info.value.message
    assert len(h.sent) == 3
    assert len(h.sleeps) == 2


def test_code_zero_with_http_500_is_a_server_error() -> None:
    h = Harness(Reply(500, b'{"code": 0, "data": 1}'))
    with pytest.raises(ServerError) as info:
        h.transport.call(LIST, retry=False)
    assert info.value.http_status == 500


def test_non_retryable_envelope_under_http_5xx_becomes_a_retryable_server_error() -> None:
    h = Harness(
        Reply(503, json.dumps({"code": 5066, "message": "x", "x-traceID": "t5"}).encode()),
        envelope(data=5),
    )
    assert h.transport.call(LIST) == 5
    assert len(h.sent) == 2


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (requests.ConnectionError("refused"), "connection failed"),
        (requests.exceptions.ChunkedEncodingError("cut"), "connection failed"),
        (requests.Timeout("slow"), "timed out"),
        (requests.exceptions.ReadTimeout("slow read"), "timed out"),
        (requests.exceptions.TooManyRedirects("loop"), "request failed"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v,
)
def test_connection_errors_become_transport_errors(exc: Exception, words: str) -> None:
    h = Harness(*[exc] * 3, policy=RetryPolicy(attempts=3))
    with pytest.raises(TransportError) as info:
        h.transport.call(LIST)
    err = info.value
    assert not isinstance(err, requests.RequestException)
    assert words in err.message
    assert err.endpoint == "api/v2/file/list"
    assert err.retryable is True
    assert len(h.sent) == 3
    assert len(h.sleeps) == 2


def test_no_requests_exception_escapes_even_without_retry() -> None:
    h = Harness(requests.ConnectionError("refused"))
    try:
        h.transport.call(LIST, retry=False)
    except requests.RequestException:  # pragma: no cover - the failure this test looks for
        pytest.fail("a requests exception escaped the HTTP layer")
    except TransportError:
        pass
    assert len(h.sent) == 1


def test_headers_factory_is_called_per_attempt() -> None:
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    calls: list[str] = []

    def headers() -> dict[str, str]:
        token = next(tokens)
        calls.append(token)
        return {"Authorization": f"Bearer {token}"}

    h = Harness(envelope(429, message="slow"), Reply(500, b"oops"), envelope(data="done"))
    assert h.transport.call(LIST, headers=headers) == "done"
    assert calls == ["tok-1", "tok-2", "tok-3"]
    assert [s.headers["Authorization"] for s in h.sent] == [
        "Bearer tok-1",
        "Bearer tok-2",
        "Bearer tok-3",
    ]


def test_429_penalizes_the_endpoint_in_the_pacer() -> None:
    h = Harness(envelope(429, message="slow"), Reply(429, b"Too Many Requests"), envelope(data=1))
    assert h.transport.call(LIST) == 1
    pacer = h.pacer
    assert isinstance(pacer, RecordingPacer)
    assert pacer.penalized == ["api/v2/file/list", "api/v2/file/list"]
    assert pacer.acquired == ["api/v2/file/list"] * 3  # every attempt is paced


def test_other_retryable_errors_do_not_penalize() -> None:
    h = Harness(envelope(20103, message="verifying"), Reply(503, b""), envelope(data=1))
    h.transport.call(LIST)
    assert isinstance(h.pacer, RecordingPacer)
    assert h.pacer.penalized == []


def test_429_makes_the_real_pacer_wait_before_the_retry() -> None:
    now = [100.0]
    pacer_waits: list[float] = []

    def advance(d: float) -> None:
        now[0] += d

    def pacer_sleep(d: float) -> None:
        pacer_waits.append(d)
        advance(d)

    pacer = Pacer({"api/v2/file/list": 5}, clock=lambda: now[0], sleep=pacer_sleep)
    h = Harness(
        envelope(429, message="slow"),
        envelope(data=1),
        pacer=pacer,
        rng=MaxRandom(),
        then_sleep=advance,
    )
    assert h.transport.call(LIST) == 1
    # the transport backs off 0.5 s, then the pacer waits out the rest of the penalty span
    # (5 calls "sent" at the 429, window 1.05 s): 0.55 s more
    assert h.sleeps == [0.5]
    assert pacer_waits == [pytest.approx(0.55)]
    assert now[0] == pytest.approx(101.05)


def test_retry_false_means_one_attempt() -> None:
    h = Harness(envelope(20103, message="verifying"), envelope(data=1))
    with pytest.raises(VerifyingError):
        h.transport.call(LIST, retry=False)
    assert len(h.sent) == 1
    assert h.sleeps == []


def _opener(content: bytes, opened: list[IO[bytes]] | None = None) -> Any:
    def open_() -> IO[bytes]:
        stream = io.BytesIO(content)
        if opened is not None:
            opened.append(stream)
        return stream

    return open_


def test_multipart_file_is_streamed_fresh_on_every_attempt() -> None:
    opened: list[IO[bytes]] = []
    payload = b"0123456789" * 100
    h = Harness(requests.ConnectionError("reset mid-body"), envelope(data={"ok": 1}))
    got = h.transport.call(
        SLICE,
        base="http://up.test",
        form={"preuploadID": "p1", "sliceNo": "1"},
        file=FormFile("slice", "slice", _opener(payload, opened)),
        headers=lambda: {"Authorization": "Bearer t"},
    )
    assert got == {"ok": 1}
    assert len(opened) == 2  # one fresh stream per attempt
    assert all(s.closed for s in opened)
    for sent in h.sent:
        assert sent.url == "http://up.test/upload/v2/file/slice"
        assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
        assert sent.headers["Authorization"] == "Bearer t"
        assert payload in sent.body
        assert b'name="preuploadID"\r\n\r\np1' in sent.body
        # fields come before the file part
        assert sent.body.index(b'name="sliceNo"') < sent.body.index(b'name="slice";')


def test_repr_shows_only_the_host() -> None:
    h = Harness()
    assert repr(h.transport) == "<HttpTransport http://api.test>"


@pytest.mark.parametrize(
    ("code", "message", "error"),
    [(429, "请求太频繁", RateLimitedError), (1, "内部错误", InternalError)],
)
def test_429s_and_internal_errors_are_retried_for_a_time_budget_not_a_count(
    code: int, message: str, error: type[RemoteError]
) -> None:
    """25 in a row with 4 attempts allowed: still retried (they only say "later")."""
    policy = RetryPolicy(attempts=4, base=0.5, cap=2.0, budget=120.0)
    h = Harness(*[envelope(code, message=message)] * 25, envelope(data=1), policy=policy)
    assert h.transport.call(CREATE, body={}) == 1
    assert len(h.sent) == 26


@pytest.mark.parametrize(("code", "message"), [(429, "请求太频繁"), (1, "内部错误")])
def test_the_time_budget_ends_the_retries_even_when_sleep_does_not_move_the_clock(
    code: int, message: str
) -> None:
    policy = RetryPolicy(attempts=4, base=0.5, cap=2.0, budget=10.0)
    h = Harness(*[envelope(code, message=message)] * 40, policy=policy, rng=MaxRandom())
    with pytest.raises(RemoteError) as info:
        h.transport.call(CREATE, body={})
    assert info.value.code == code
    assert 10.0 <= sum(h.sleeps) < 12.0  # the waits add up to the budget, then it gives up
    assert len(h.sent) == len(h.sleeps) + 1


def test_other_retryable_errors_still_count_attempts_beside_time_retried_ones() -> None:
    """Attempts count only the errors that are retried by count."""
    policy = RetryPolicy(attempts=3, base=0.01, cap=0.01, budget=60.0)
    steps = [envelope(429, message="slow"), Reply(503, b"")] * 2 + [envelope(20103)] * 2
    h = Harness(*steps, policy=policy)
    with pytest.raises(VerifyingError):
        h.transport.call(CREATE, body={})
    assert len(h.sent) == 5  # 503, 503, 20103: the third counted failure ends it
