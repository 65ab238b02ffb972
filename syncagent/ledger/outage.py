"""Riding out a database server outage: what counts as one, the retries, and its state.

A ledger on PostgreSQL (or any server database) can vanish for a while: a restart, a
fail-over, a network cut. The engine's pool pre-pings each connection it hands out (a
connection the server closed is replaced, not used), and :class:`Outage` retries getting a
connection, and whole reads, with backoff for up to ``wait`` seconds (60 by default) before
giving up with :class:`~syncagent.errors.LedgerUnavailableError`. A connection lost in the
middle of a write transaction cannot be replayed from here (the server rolled it back); that
raises the same error at once, and the agent runs the pass again later.

:class:`Outage` also remembers since when the server is unreachable (None while it answers),
which ``/healthz`` reports, and logs the outage's start and end once each. SQLite ledgers are
files: nothing here applies to them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from syncagent.errors import LedgerUnavailableError

__all__ = ["WAIT", "Outage", "is_connection_loss"]

log = logging.getLogger("syncagent")

T = TypeVar("T")

WAIT = 60.0  # seconds an operation keeps retrying while the server is unreachable
FIRST_DELAY = 0.25
MAX_DELAY = 2.0

# SQLSTATE classes and codes of a lost or refused connection (class 08) and of a server
# that is shutting down or starting (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
# cannot_connect_now).
_STATES = ("08", "57P01", "57P02", "57P03")
_WORDS = (
    "connection refused",
    "could not connect",
    "connection to server",
    "server closed the connection",
    "terminating connection",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "connection is closed",
    "connection already closed",
    "no connection to the server",
    "consuming input failed",
    "connection reset",
    "broken pipe",
    "network error",
    "can't create a connection",
    "connection timed out",
    "timeout expired",
    "ssl syscall",
)


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)  # psycopg
    if state is None and exc.args and isinstance(exc.args[0], dict):  # pg8000
        state = exc.args[0].get("C")
    return str(state) if state else None


def is_connection_loss(exc: BaseException) -> bool:
    """Whether ``exc`` (SQLAlchemy's or the driver's) says the server is out of reach."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    orig = getattr(exc, "orig", None) or exc
    state = _sqlstate(orig)
    if state is not None and state.startswith(_STATES):
        return True
    text = str(orig).lower()
    return any(word in text for word in _WORDS)


class Outage:
    """The reachability of one ledger's server, and the retry loop that waits it out.

    :param where: the ledger as messages name it (its masked URL).
    :param wait: seconds an operation retries before giving up.
    :param enabled: False for SQLite: nothing is retried.
    """

    def __init__(self, where: str, *, wait: float = WAIT, enabled: bool = True) -> None:
        self.where = where
        self.wait = wait
        self.enabled = enabled
        self.since: float | None = None  # wall time it became unreachable; None: it answers
        self.reason: str | None = None
        self._lock = threading.Lock()

    def down(self, reason: str) -> None:
        """Record that the server did not answer (logged once per outage)."""
        with self._lock:
            first = self.since is None
            if first:
                self.since = time.time()
            self.reason = reason
        if first:
            log.warning("the ledger %s is unreachable (%s)", self.where, reason)

    def up(self) -> None:
        """Record that the server answered (logs the end of an outage)."""
        if self.since is None:
            return
        with self._lock:
            since, self.since, self.reason = self.since, None, None
        if since is not None:
            log.warning("the ledger %s is reachable again after %.0f s", self.where,
                        time.time() - since)  # fmt: skip

    def unavailable(self, reason: str, *, waited: bool = False) -> LedgerUnavailableError:
        self.down(reason)
        error = LedgerUnavailableError(
            f"the ledger {self.where} is unreachable ({reason}); the work is tried again "
            "once it answers"
        )
        error.waited = waited
        return error

    def retry(self, attempt: Callable[[], T], cause: Callable[[BaseException], str]) -> T:
        """``attempt()``, tried again with backoff for up to ``wait`` seconds while it fails
        with a lost connection (or a :class:`LedgerUnavailableError` that did not wait: a
        transaction cut short, run again whole); then :class:`LedgerUnavailableError`.
        Other errors pass."""
        deadline: float | None = None
        delay = FIRST_DELAY
        while True:
            try:
                result = attempt()
            except LedgerUnavailableError as exc:
                if exc.waited or exc.__cause__ is None:
                    raise
                lost: BaseException = exc.__cause__
            except Exception as exc:
                if not self.enabled or not is_connection_loss(exc):
                    raise
                lost = exc
            else:
                self.up()
                return result
            # the server is out of reach: wait, then try again
            reason = cause(lost)
            self.down(reason)
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.wait
                log.info("waiting up to %.0f s for the ledger %s", self.wait, self.where)
            if now >= deadline:
                raise self.unavailable(reason, waited=True) from lost
            time.sleep(min(delay, max(0.0, deadline - now)))
            delay = min(MAX_DELAY, delay * 2)
