"""HTTP to 123pan: the only module of syncagent that imports ``requests``.

One keep-alive :class:`requests.Session` per client, a timeout on every call, the
``{code, message, data, x-traceID}`` envelope decoded once, every failure translated once into
the error tree (foreign exceptions stop here), and the first retry layer: an attempt that fails
with a ``retryable`` error (connection errors, HTTP 5xx, 429, 20103, "slow down", "内部错误") is
tried again after a capped exponential backoff with full jitter; 429s and internal errors for a
time budget rather than a number of tries. The pacer keeps each endpoint under its
QPS. Request bodies are built by factories, so a retried upload streams its file again from
the start; nothing here holds a file in memory. A file part is streamed by
:class:`~syncagent.pan123.multipart.MultipartBody` in pieces of 256 KiB, read straight into
the socket. Plain GETs, JSON POSTs and uploads are sent straight through the session's
urllib3 pool (:meth:`HttpTransport._direct`), skipping requests' per-call work; what needs
requests (a proxy, a redirect) goes through it.

Never logs headers or bodies: the token and secrets stay out of logs.

Proxies and certificate authorities come from the environment as in requests itself
(``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``/
``CURL_CA_BUNDLE``; HTTPS through a proxy is tunnelled with CONNECT, so the proxy never sees
the token), but nothing else of it (``trust_env`` stays off: no ``.netrc`` credentials). A
transport made with ``use_environment=False`` ignores them: the embedded emulator, on
loopback in the same process, is never reached through a proxy.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlencode

import requests
import urllib3
from requests.adapters import HTTPAdapter

from syncagent.errors import (
    CertificateError,
    Interrupted,
    RateLimitedError,
    RemoteError,
    ServerError,
    TransportError,
)
from syncagent.pan123.bandwidth import Throttle
from syncagent.pan123.endpoints import Endpoint
from syncagent.pan123.errors import from_envelope, from_http_status
from syncagent.pan123.multipart import MultipartBody
from syncagent.pan123.ratelimit import Pacer

__all__ = ["PLATFORM_HEADER", "FormFile", "HttpTransport", "RetryPolicy", "StreamAnswer"]

log = logging.getLogger("syncagent.pan123")
_answer = threading.local()  # ``trace``: the x-traceID of this thread's last answer, for -vv

PLATFORM_HEADER = {"Platform": "open_platform"}
USER_AGENT = "syncagent/0.1"


@dataclass(frozen=True)
class RetryPolicy:
    """Layer-1 retries, backoff ``base * 2**n`` capped, jittered.

    ``attempts`` tries in all for most retryable errors; errors that only say "later" (429,
    code 1 "内部错误": ``retried_by_time``) are retried until ``budget`` seconds have gone
    since the call's first try, however many tries that takes.
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 20.0
    budget: float = 300.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)], at least 10 ms."""
        return max(0.01, rng.uniform(0, min(self.cap, self.base * (2 ** min(attempt, 30)))))


@dataclass(frozen=True)
class FormFile:
    """The file part of a multipart body: a factory so each attempt gets a fresh stream."""

    field: str
    filename: str
    open: Callable[[], IO[bytes]]


_NO_RETRIES = urllib3.Retry(0, read=False)  # as requests' adapter with max_retries=0
_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_CERT_REASON = re.compile(r"certificate verify failed:?\s*([^(')]*)")
_TLS_REASON = re.compile(r"\[SSL[^\]]*\]\s*([^(')]+)")


class StreamAnswer:
    """The answer to a streamed GET: status, headers, and the body in pieces (read once)."""

    def __init__(self, raw: urllib3.BaseHTTPResponse) -> None:
        self.status = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self._raw = raw

    def pieces(self, size: int) -> Iterator[bytes]:
        """The body, at most ``size`` bytes at a time, each piece as soon as it arrives; a
        cut connection raises TransportError after every byte received was yielded
        (``iter_content`` would drop the part of a piece that arrived before the cut)."""
        raw = self._raw
        with _translated("download"):
            try:
                while piece := raw.read1(size, decode_content=True):
                    yield piece
            except urllib3.exceptions.HTTPError as exc:
                raise requests.exceptions.ChunkedEncodingError(str(exc)) from exc


def host_port(url: str) -> str:
    """``host:port`` of a URL (the default port of its scheme when none is given), the
    part of a connection failure a person can check; nothing else of the URL (a download
    URL's query is a credential)."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 443 if parts.scheme == "https" else 80
    host = parts.hostname or "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@contextmanager
def _translated(endpoint: str, url: str = "") -> Iterator[None]:
    """Turn requests' exceptions into the error tree (the one place that does); a failed
    connection names the host and port it tried, and what to check."""
    where = host_port(url) if url else "123pan"
    check = (
        f"could not reach {where}: check the network, a firewall or proxy "
        "(HTTPS_PROXY, NO_PROXY), and api_base"
    )
    try:
        yield
    except requests.exceptions.SSLError as exc:
        if found := _CERT_REASON.search(str(exc)):
            raise CertificateError(
                f"certificate verify failed: {found.group(1).strip()}", endpoint=endpoint
            ) from exc
        found = _TLS_REASON.search(str(exc))
        reason = found.group(1).strip() if found else "the handshake failed"
        raise TransportError(f"TLS failed: {reason}", endpoint=endpoint) from exc
    except requests.Timeout as exc:
        raise TransportError(
            f"timed out: {type(exc).__name__} ({check})", endpoint=endpoint
        ) from exc
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise TransportError(
            f"connection failed: {type(exc).__name__} ({check})", endpoint=endpoint
        ) from exc
    except requests.RequestException as exc:
        raise TransportError(
            f"request failed: {type(exc).__name__} ({check})", endpoint=endpoint
        ) from exc


class HttpTransport:
    """Sends one logical call, with retries, and returns the envelope's ``data``.

    :param api_base: e.g. ``https://open-api.123pan.com``.
    :param pacer: shared per-endpoint limiter.
    :param timeout: (connect, read) seconds for every request.
    :param pool_size: keep-alive connections per host (one per worker is enough).
    :param sleep: injectable for tests.
    :param cancelled: once set (a shutdown), a failed call is not retried: it raises
        :class:`~syncagent.errors.Interrupted` (set it, then wake ``sleep``).
    """

    def __init__(
        self,
        api_base: str,
        pacer: Pacer,
        *,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (10.0, 120.0),
        pool_size: int = 16,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        cancelled: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        use_environment: bool = True,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self._clock = clock
        self._use_environment = use_environment
        self._proxies: dict[str, dict[str, str]] = {}  # scheme://host:port -> proxies
        self._cancelled = cancelled or threading.Event()
        self._pacer = pacer
        # The bandwidth limits (pan123/bandwidth.py), set by the client; None: no limit.
        self.upload_throttle: Throttle | None = None  # paces each upload's file pieces
        self.download_throttle: Throttle | None = None  # paces each download's pieces
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._session = requests.Session()
        # Not requests' trust_env (it also sends .netrc credentials): the proxies and the CA
        # bundle of the environment are applied by hand, see the module docstring.
        self._session.trust_env = False
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if use_environment and bundle:
            self._session.verify = bundle
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        # urllib3 sends 16 KiB a time by default; each piece is one file read and one send
        adapter.poolmanager.connection_pool_kw["blocksize"] = 256 << 10
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({**PLATFORM_HEADER, "User-Agent": USER_AGENT})
        self._base_headers = dict(self._session.headers)
        self._urllib3_timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self._pool_keys: dict[str, tuple[HTTPAdapter, dict[str, Any], dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"<HttpTransport {self.api_base}>"

    def _proxies_for(self, url: str) -> dict[str, str]:
        """The environment's proxy for ``url`` (NO_PROXY honoured), cached per host."""
        if not self._use_environment:
            return {}
        scheme, rest = url.split("://", 1)
        key = f"{scheme}://{rest.split('/', 1)[0]}"
        found = self._proxies.get(key)
        if found is None:
            found = self._proxies[key] = dict(requests.utils.get_environ_proxies(key))
        return found

    def close(self) -> None:
        """Close every pooled connection now.

        urllib3 2.x's ``PoolManager.clear()`` (what ``adapter.close()`` does) only forgets the
        pools; their sockets stay open for as long as anything refers to the pool, such as a
        response kept alive by the traceback of an exception the caller still holds.
        """
        for adapter in self._session.adapters.values():
            if isinstance(adapter, HTTPAdapter):
                pools = adapter.poolmanager.pools
                for key in pools.keys():  # noqa: SIM118 - the container refuses iteration
                    pool = pools.get(key)
                    if pool is not None:
                        pool.close()
            adapter.close()
        self._session.close()

    def call(
        self,
        endpoint: Endpoint,
        *,
        headers: Callable[[], Mapping[str, str]] = dict,
        base: str | None = None,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        file: FormFile | None = None,
        retry: bool = True,
    ) -> Any:
        """Call ``endpoint`` and return ``data``; raises a :class:`RemoteError` subclass.

        :param headers: called before each attempt (so a refreshed token is picked up).
        :param base: the host for upload endpoints; default the API host.
        :param params: query string (GET).
        :param body: JSON body.
        :param form: multipart fields, sent before ``file``.
        """
        url = (base or self.api_base).rstrip("/") + endpoint.path
        policy = self._retry
        started, waited = self._clock(), 0.0
        attempt = counted = 0  # tries so far; those that count against policy.attempts
        while True:
            # Before each attempt, so a refreshed token is picked up; outside the retry
            # loop's reach: a token fetch that failed has had its own retries.
            sent_headers = headers()
            self._pacer.acquire(endpoint.name)
            t0 = time.monotonic()
            try:
                try:
                    data = self._once(endpoint, url, sent_headers, params, body, form, file)
                    _log_request(endpoint, t0, None)
                    return data
                finally:
                    self._pacer.release(endpoint.name)
            except RemoteError as err:
                _log_request(endpoint, t0, err)
                if isinstance(err, RateLimitedError):
                    self._pacer.penalize(endpoint.name)
                attempt += 1
                # Time spent: the clock's, or the waits alone (an injected sleep does not
                # move the clock), so the budget ends either way.
                spent = max(self._clock() - started, waited)
                if err.retried_by_time:
                    done = spent >= policy.budget
                    where = f"{spent:.0f} s of {policy.budget:.0f} s spent"
                else:
                    counted += 1
                    done = counted >= policy.attempts
                    where = f"attempt {counted + 1} of {policy.attempts}"
                if not err.retryable or not retry or done:
                    raise
                if self._cancelled.is_set():
                    raise Interrupted(f"{err}; not retried: stopping") from err
                delay = policy.delay(attempt - 1, self._rng)
                log.info("%s; retrying in %.1f s (%s)", err, delay, where)
                self._sleep(delay)
                waited += delay
                if self._cancelled.is_set():
                    raise Interrupted(f"{err}; not retried: stopping") from err

    @contextmanager
    def stream(self, url: str, headers: Mapping[str, str] | None = None) -> Iterator[StreamAnswer]:
        """GET ``url`` (a download URL: no token is sent) and stream its body; no retries
        here, the caller resumes. Raises TransportError when no answer arrives."""
        # identity: byte ranges count bytes of the file, not of a compressed body
        sent = {"Accept-Encoding": "identity", **(headers or {})}
        with _translated("download", url):
            raw = self._direct(url, sent, stream=True)
            if raw is None:
                raw = self._session.get(
                    url,
                    headers=sent,
                    stream=True,
                    timeout=self._timeout,
                    proxies=self._proxies_for(url),
                ).raw
        try:
            yield StreamAnswer(raw)
        finally:
            # as requests' Response.close: a body not read to its end closes the connection
            raw.close()
            raw.release_conn()

    def _pool_key(self, url: str) -> tuple[HTTPAdapter, dict[str, Any], dict[str, Any]] | None:
        """How :meth:`_direct` reaches ``url``'s pool, or None when only requests can (a
        proxy, credentials or characters to quote in the URL, another transport mounted)."""
        if not url.isascii() or not url.isprintable() or " " in url or self._proxies_for(url):
            return None
        scheme, _, rest = url.partition("://")
        host, slash, _ = rest.partition("/")
        if "@" in host or scheme not in ("http", "https") or not slash:
            return None
        origin = f"{scheme}://{host}"
        found = self._pool_keys.get(origin)
        if found is None:
            adapter = self._session.get_adapter(url)
            if not isinstance(adapter, HTTPAdapter):  # another transport mounted (tests)
                return None
            host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(
                requests.Request("GET", origin + "/").prepare(), self._session.verify or False
            )
            found = self._pool_keys[origin] = (adapter, dict(host_params), dict(pool_kwargs))
        return found

    def _direct(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        stream: bool,
        method: str = "GET",
        body: bytes | MultipartBody | None = None,
    ) -> urllib3.BaseHTTPResponse | None:
        """Send ``method`` to ``url`` (with ``body``: bytes, or a multipart body streamed
        from its file, whose ``Content-Length`` the caller puts in ``headers``) straight
        through the session's urllib3 pool, the way requests' adapter does (same pools,
        TLS settings, timeouts, no retries or redirects), without requests' per-call work
        (~1 ms of CPU a call, most of a small file's upload and of a restore of small
        files). None when the URL needs what only requests does here (a proxy, credentials
        or characters to quote in the URL) or answers with a redirect: the caller then uses
        requests, which follows it (with a fresh body).

        Raises requests' exceptions, as requests would, for :func:`_translated`.
        """
        found = self._pool_key(url)
        if found is None:
            return None
        adapter, host_params_, pool_kwargs_ = found
        path = url.partition("://")[2].partition("/")[2]
        try:
            pool = adapter.poolmanager.connection_from_host(
                **host_params_, pool_kwargs=pool_kwargs_
            )
            answer: urllib3.BaseHTTPResponse = pool.urlopen(
                method,
                "/" + path.partition("#")[0],
                body=body,
                headers={**self._base_headers, **headers},
                redirect=False,
                assert_same_host=False,
                preload_content=not stream,
                decode_content=not stream,
                retries=_NO_RETRIES,
                timeout=self._urllib3_timeout,
            )
            if answer.status in _REDIRECTS and answer.get_redirect_location():
                answer.close()  # requests follows it (a CDN may send a download elsewhere)
                answer.release_conn()
                return None
            return answer
        except (urllib3.exceptions.ProtocolError, OSError) as exc:
            raise requests.ConnectionError(exc) from exc
        except urllib3.exceptions.MaxRetryError as exc:
            reason = exc.reason
            if isinstance(reason, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
                reason, urllib3.exceptions.NewConnectionError
            ):
                raise requests.exceptions.ConnectTimeout(exc) from exc
            if isinstance(reason, urllib3.exceptions.SSLError):
                raise requests.exceptions.SSLError(exc) from exc
            raise requests.ConnectionError(exc) from exc
        except urllib3.exceptions.SSLError as exc:
            raise requests.exceptions.SSLError(exc) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise requests.ConnectionError(exc) from exc

    def _once(
        self,
        endpoint: Endpoint,
        url: str,
        headers: Mapping[str, str],
        params: Mapping[str, Any] | None,
        body: Mapping[str, Any] | None,
        form: Mapping[str, str] | None,
        file: FormFile | None,
    ) -> Any:
        name = endpoint.name
        with _translated(name, url):
            if file is not None:
                if self._pool_key(url) is not None:
                    with file.open() as stream:
                        encoder = MultipartBody(
                            form or {}, file.field, file.filename, stream, self.upload_throttle
                        )
                        sent = {
                            **headers,
                            "Content-Type": encoder.content_type,
                            "Content-Length": str(len(encoder)),
                        }
                        direct = self._direct(
                            url, sent, stream=False, method=endpoint.method, body=encoder
                        )
                    if direct is not None:
                        return _decode(name, direct.status, direct.data)
                with file.open() as stream:  # through requests: a proxy, or a redirect
                    encoder = MultipartBody(
                        form or {}, file.field, file.filename, stream, self.upload_throttle
                    )
                    response = self._session.request(
                        endpoint.method,
                        url,
                        data=encoder,
                        timeout=self._timeout,
                        proxies=self._proxies_for(url),
                        headers={**headers, "Content-Type": encoder.content_type},
                    )
            else:
                if endpoint.method == "GET" and body is None and form is None:
                    kept = {k: v for k, v in (params or {}).items() if v is not None}
                    query = f"?{urlencode(kept, doseq=True)}" if kept else ""  # as requests
                    direct = self._direct(url + query, headers, stream=False)
                    if direct is not None:
                        return _decode(name, direct.status, direct.data)
                elif body is not None and form is None and params is None:
                    data = json.dumps(body, allow_nan=False).encode()  # as requests sends it
                    sent = {**headers, "Content-Type": "application/json"}
                    direct = self._direct(
                        url, sent, stream=False, method=endpoint.method, body=data
                    )
                    if direct is not None:
                        return _decode(name, direct.status, direct.data)
                response = self._session.request(
                    endpoint.method,
                    url,
                    params=params,
                    json=body,
                    headers=dict(headers),
                    timeout=self._timeout,
                    proxies=self._proxies_for(url),
                )
            status, raw = response.status_code, response.content
        return _decode(name, status, raw)


def _log_request(endpoint: Endpoint, t0: float, err: RemoteError | None) -> None:
    """One line per request at DEBUG (``-vv``): method, endpoint, code, trace ID, duration.
    Never a header, a URL's query or a body: they may hold the token or the secret."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    ms = (time.monotonic() - t0) * 1000
    if err is None:
        trace = getattr(_answer, "trace", "") or "-"
        log.debug("%s %s -> code 0, trace %s (%.0f ms)", endpoint.method, endpoint.name, trace, ms)
    else:
        log.debug(
            "%s %s -> code %s, trace %s (%.0f ms): %s",
            endpoint.method,
            endpoint.name,
            err.code,
            err.trace_id or "-",
            ms,
            type(err).__name__,
        )


def _decode(endpoint: str, status: int, raw: bytes) -> Any:
    """The envelope's ``data``, or the error it describes."""
    try:
        envelope = json.loads(raw)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or "code" not in envelope:
        if status != 200:
            raise from_http_status(
                status, endpoint=endpoint, text=raw[:200].decode("utf-8", "replace")
            )
        raise ServerError("the answer is not a 123pan JSON envelope", endpoint=endpoint)
    code = envelope.get("code")
    if code == 0 and status == 200:
        _answer.trace = str(envelope.get("x-traceID", ""))
        return envelope.get("data")
    if not isinstance(code, int) or code == 0:
        raise from_http_status(status, endpoint=endpoint)
    raise from_envelope(
        code,
        str(envelope.get("message", "")),
        endpoint=endpoint,
        trace_id=str(envelope.get("x-traceID", "")),
        http_status=status,
    )
