"""``-v``: one log line per decision a pass takes for a file, and why.

After a root is planned (and the mass-change guard has had its say) each upload is logged
with its reason (``new``, ``changed``: size or mtime moved, ``retry``: an earlier attempt
failed or was not finished, ``recheck``: only the ctime moved, so it is hashed and sent only
if the content changed), each skip with its reason, each move with both paths, and the files
left alone are counted (unchanged, waiting for their retry time). DEBUG level, so a pass
without ``-v`` builds none of these lines.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from syncagent.config import RootConfig
from syncagent.model import LedgerFacts
from syncagent.planner import Plan

__all__ = ["WHY", "log_plan"]

log = logging.getLogger("syncagent.decisions")

WHY = {
    "new": "new: not backed up before",
    "changed": "changed: its size or modification time differs from the backed-up copy",
    "retry": "retry: an earlier upload failed or did not finish",
    "recheck": "only its ctime moved: hashed, and sent only if its content changed",
}


def log_plan(
    root: RootConfig,
    planned: Plan,
    held: bool = False,
    facts: Mapping[str, LedgerFacts] | None = None,
) -> None:
    """Log every decision of ``planned`` for ``root`` (nothing unless DEBUG is on); a retry
    says what went wrong last time, from the ledger's ``facts`` when given."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    where = root.local
    for u in planned.uploads:
        why = WHY.get(u.why, u.why)
        last = facts.get(u.entry.rel_path) if facts is not None and u.why == "retry" else None
        if last is not None and last.reason:
            why += f" (last time: {last.reason})"
        log.debug("decision: upload %s/%s: %s", where, u.entry.rel_path, why)
    for m in planned.moves:
        log.debug(
            "decision: move %s/%s -> %s: same content at a new path (no upload)",
            where,
            m.old_rel,
            m.entry.rel_path,
        )
    for s in planned.skips:
        log.debug("decision: skip %s/%s: %s", where, s.rel_path, s.reason)
    if held:
        log.debug("decision: %s: held by the mass-change guard: only new files go this pass", where)
    log.debug(
        "decision: %s: %d unchanged (not sent), %d waiting for their retry time",
        where,
        planned.unchanged,
        planned.waiting,
    )
