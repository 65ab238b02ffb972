"""Plain words for what ``verify`` finds, and for a 123pan answer met while checking.

``verify`` never prints a bare 123pan message: each line names the file or folder it is
about, says what the finding means (in words a person who never read 123pan's API can act
on) and what to do; 123pan's own words, code and trace ID follow in brackets for a support
ticket. Pure: strings in, strings out.
"""

from __future__ import annotations

from syncagent.errors import (
    BusyError,
    InternalError,
    QuotaExceededError,
    RateLimitedError,
    RemoteError,
    RemoteNotFoundError,
    ServerError,
    TransportError,
)

__all__ = ["differs", "missing", "remote_failure"]

REPAIR = "`syncagent verify --repair` then `syncagent sync` uploads it again"


def missing(remote_path: str) -> str:
    """A file the ledger calls backed up that 123pan does not hold."""
    return (
        f"NOT on 123pan: the ledger says it was backed up to {remote_path}, but no file is "
        "there now (deleted, moved or renamed in the 123pan app or by another program, or "
        f"in the recycle bin); {REPAIR}"
    )


def differs(remote_path: str, held_size: int, held_etag: str, size: int, md5: str | None) -> str:
    """123pan holds another file at the path than the one backed up."""
    what = (
        f"{held_size} bytes instead of {size}"
        if held_size != size
        else "the same size but other content (its MD5 differs)"
    )
    return (
        f"DIFFERENT on 123pan: {remote_path} holds {what}, so it is not the copy this "
        "machine backed up (replaced in the 123pan app or by another program, or damaged); "
        f"{REPAIR} [123pan: {held_size} bytes, etag {held_etag}; backed up: {size} bytes, "
        f"MD5 {md5}]"
    )


def _meaning(exc: RemoteError) -> str:
    if isinstance(exc, TransportError):
        return "123pan could not be reached"
    if isinstance(exc, RemoteNotFoundError):
        return "123pan says it does not exist (deleted or moved while it was checked)"
    if isinstance(exc, RateLimitedError | BusyError):
        return "123pan asked to slow down; try again in a few minutes"
    if isinstance(exc, QuotaExceededError):
        return "the 123pan account is out of space"
    if isinstance(exc, ServerError | InternalError):
        return "123pan failed on its side; try again later"
    if exc.hint:
        return exc.hint
    return "123pan refused the request"


def remote_failure(exc: RemoteError, doing: str) -> str:
    """What went wrong while ``doing`` (e.g. ``listing /backup/docs``), in plain words,
    123pan's own message kept in brackets."""
    return f"{_meaning(exc)} while {doing} [123pan said: {exc}]"
