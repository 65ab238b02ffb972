"""What ``/metrics`` adds from the ledger and the running pass, per root.

The agent's own counters (:mod:`syncagent.monitor`) say what this process did; an operator
also needs where things stand: per root (a ``root`` label) the files and bytes not sent yet
(:func:`syncagent.leftover.unsent`) and the failed files by kind of error (``local``: the
file could not be read or changed while sent; ``123pan``: 123pan answered with an error,
with its ``code``; ``network``: 123pan could not be reached) and the endpoint that
failed, the time of the last pass that ended ``ok``, and the bytes the running pass has
sent so far. Read on each scrape; a ledger that cannot be read leaves these out (and says
so in one metric) instead of failing ``/metrics``.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text

from syncagent.errors import SyncAgentError
from syncagent.ledger import Ledger
from syncagent.leftover import unsent
from syncagent.model import FileState

__all__ = ["collect", "render"]

# how a failure reads in the ledger: no code (local), the transport's, or 123pan's own
_TRANSPORT_HINTS = ("unreachable", "connection", "timed out", "timeout")
_ENDPOINT = re.compile(r"\[((?:api|upload)/[\w./-]+)(?:, [^\]]*)?\]$")


def collect(ledger: Ledger, activity: dict[str, Any] | None = None) -> dict[str, Any]:
    """The facts, for :func:`render`: ``roots`` (path -> pending files/bytes, failures by
    (kind, code)), ``last_ok_pass_at``, ``pass_bytes_sent`` (the running pass, if any)."""
    out: dict[str, Any] = {}
    if ledger.outage.since is not None:  # the server is down: a scrape must not wait on it
        return {"ledger_ok": False}
    try:
        left = unsent(ledger)
        with ledger.session(write=False) as s:
            failed = s.execute(
                text(
                    "SELECT r.local_path, f.last_error_code, f.reason, count(*) FROM files f "
                    "JOIN roots r ON r.id = f.root_id WHERE f.state = :failed "
                    "GROUP BY r.local_path, f.last_error_code, f.reason"
                ),
                {"failed": FileState.FAILED.value},
            ).all()
            last_ok = s.execute(
                text("SELECT max(finished_at) FROM passes WHERE result = 'ok'")
            ).scalar()
    except SyncAgentError:
        return {"ledger_ok": False}
    roots: dict[str, dict[str, Any]] = {
        path: {"files": u.files, "bytes": u.bytes, "errors": {}} for path, u in left.items()
    }
    for path, code, reason, n in failed:
        if str(path) not in roots:  # another host's root (a fleet shares the ledger)
            continue
        kind = _kind(code, str(reason or ""))
        errors = roots.setdefault(str(path), {"files": 0, "bytes": 0, "errors": {}})["errors"]
        key = (kind, "" if code is None else str(code), _endpoint(str(reason or "")))
        errors[key] = errors.get(key, 0) + int(n)
    out.update(ledger_ok=True, roots=roots, last_ok_pass_at=last_ok)
    if activity and activity.get("phase") == "uploading":
        out["pass_bytes_sent"] = int(activity.get("bytes_done", 0))
        out["pass_files_done"] = int(activity.get("files_done", 0))
    return out


def _endpoint(reason: str) -> str:
    """The 123pan endpoint a failure came from, as a RemoteError names it at the end of its
    message (``... [upload/v2/file/create, code 5066]``); empty for a local failure."""
    found = _ENDPOINT.search(reason)
    return "" if found is None else found.group(1)


def _kind(code: int | None, reason: str) -> str:
    if code is not None:
        return "123pan"
    if any(h in reason.lower() for h in _TRANSPORT_HINTS):
        return "network"
    return "local"


def render(facts: dict[str, Any]) -> list[str]:
    """Prometheus text lines for :func:`collect`'s facts. Pure."""
    lines = [
        "# HELP syncagent_ledger_readable 1 when the ledger could be read for these metrics.",
        "# TYPE syncagent_ledger_readable gauge",
        f"syncagent_ledger_readable {1 if facts.get('ledger_ok') else 0}",
    ]
    roots: dict[str, dict[str, Any]] = facts.get("roots") or {}
    lines += [
        "# HELP syncagent_pending_files Files not uploaded yet (new, changed or failed).",
        "# TYPE syncagent_pending_files gauge",
        *(f'syncagent_pending_files{{root="{_label(r)}"}} {v["files"]}' for r, v in roots.items()),
        "# HELP syncagent_pending_bytes Bytes of the files not uploaded yet.",
        "# TYPE syncagent_pending_bytes gauge",
        *(f'syncagent_pending_bytes{{root="{_label(r)}"}} {v["bytes"]}' for r, v in roots.items()),
        "# HELP syncagent_failed_files Files whose last attempt failed: kind, code, endpoint.",
        "# TYPE syncagent_failed_files gauge",
    ]
    for r, v in roots.items():
        for (kind, code, endpoint), n in sorted(v["errors"].items()):
            labels = f'root="{_label(r)}",kind="{kind}",code="{code}",endpoint="{endpoint}"'
            lines.append(f"syncagent_failed_files{{{labels}}} {n}")
    if facts.get("last_ok_pass_at"):
        lines += [
            "# HELP syncagent_last_success_timestamp_seconds When the last pass ended ok.",
            "# TYPE syncagent_last_success_timestamp_seconds gauge",
            f"syncagent_last_success_timestamp_seconds {float(facts['last_ok_pass_at']):.3f}",
        ]
    if "pass_bytes_sent" in facts:
        lines += [
            "# HELP syncagent_pass_bytes_sent Bytes the running pass has sent so far.",
            "# TYPE syncagent_pass_bytes_sent gauge",
            f"syncagent_pass_bytes_sent {facts['pass_bytes_sent']}",
            "# HELP syncagent_pass_files_done Files the running pass has finished so far.",
            "# TYPE syncagent_pass_files_done gauge",
            f"syncagent_pass_files_done {facts['pass_files_done']}",
        ]
    return lines


def _label(value: str) -> str:
    """A Prometheus label value, escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
