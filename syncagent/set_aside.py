"""Remote copies that a pass retires become versions instead of going to the recycle bin.

Two kinds of retirement used the 123pan recycle bin, which empties itself:

- **deleted** (mirror mode): a file deleted locally;
- **displaced**: a file whose 123pan name a folder now needs (``x`` became ``x/``), or the
  files below a folder whose name a file now needs (``x/`` became ``x``).

With versions on, each such copy is kept aside exactly like the previous content of a changed
file (``versions.keep_aside``: the record first, then rename and move into
``.syncagent/versions/<remote rel path>/``), with ``why`` saying which, so ``ls --versions``
and ``restore --at`` see it and retention prunes it. The ledger row is forgotten only after
its copy is recorded ``done``, so a crash at any point leaves the row, and the rerun finds
the same retirement: ``keep_aside`` skips a done record and finishes a pending one. Such
records are never "orphans" to put back (``versions.orphans``): their path is not meant to
hold them any more. A folder displaced by a file is still trashed, once the files the
ledger knows below it are kept (what is left in it is nothing the agent backed up).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from syncagent.errors import RemoteError
from syncagent.ledger import Ledger
from syncagent.model import FileState, LedgerFacts
from syncagent.replaced import Replacements
from syncagent.versions import keep_aside

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client

__all__ = ["DELETED", "DISPLACED", "deleted", "displaced", "keep_rows"]

log = logging.getLogger("syncagent")

DELETED = "deleted"
DISPLACED = "displaced"


def _keepable(facts: LedgerFacts) -> bool:
    """A row whose copy 123pan holds, with what a version record needs."""
    return (
        facts.state in (FileState.DONE, FileState.GONE)
        and facts.remote_id is not None
        and facts.remote_name is not None
        and facts.md5 is not None
    )


def keep_rows(
    client: Pan123Client,
    ledger: Ledger,
    remote_root: int,
    root_id: int,
    rows: Sequence[tuple[str, LedgerFacts]],
    why: str,
    stopped: Callable[[], bool] = lambda: False,
) -> list[str]:
    """Keep the copies of ``rows`` as versions, in order; the rows done (kept, or no longer
    on 123pan), to be forgotten by the caller. The first failure, or a stop, ends it: the
    rows after it stay for the next pass (a failure is logged, or raised when fatal)."""
    kept: list[str] = []
    for rel, facts in rows:
        if stopped():
            break
        assert facts.remote_id is not None and facts.remote_name is not None
        assert facts.md5 is not None
        try:
            keep_aside(
                client, ledger, remote_root, root_id, facts.remote_id, rel, facts.remote_name,
                facts.size, facts.md5, facts.mtime_ns, why,
            )  # fmt: skip
        except RemoteError as exc:
            if exc.fatal:
                raise
            log.warning("%s: its copy could not be kept as a version (next pass): %s", rel, exc)
            break
        kept.append(rel)
    return kept


def displaced(
    client: Pan123Client,
    ledger: Ledger,
    remote_root: int,
    root_id: int,
    rep: Replacements,
    facts: Mapping[str, LedgerFacts],
) -> Replacements | None:
    """Keep the copies that ``rep`` retires as versions; what is left to retire (the displaced
    folders, now without the files the ledger knew in them, and files with nothing a record
    needs). None when a copy could not be kept: nothing is retired this pass (the uploads
    that need the names fail with their reason, and the next pass tries again)."""
    rows = [(r, f) for r in sorted(rep.rows) if (f := facts.get(r)) is not None and _keepable(f)]
    done = set(keep_rows(client, ledger, remote_root, root_id, rows, DISPLACED))
    if len(done) < len(rows):
        return None
    if done:
        log.info("%d files displaced by entries of the other kind were kept as versions", len(done))
    return replace(rep, files=[(r, i) for r, i in rep.files if r not in done])


def deleted(
    client: Pan123Client,
    ledger: Ledger,
    remote_root: int,
    root_id: int,
    gone: Sequence[tuple[str, int]],
    facts: Mapping[str, LedgerFacts],
    stopped: Callable[[], bool] = lambda: False,
) -> tuple[list[str], list[tuple[str, int]], bool]:
    """Mirror mode: keep the copies of files deleted locally (``gone``: (rel, fileID)) as
    versions. Returns the rows kept (to forget), the ones with nothing a record needs (no
    MD5: to the recycle bin as before), and whether every keepable one was kept (if not, the
    rest stay for the next pass)."""
    keepable = [(r, f) for r, _ in gone if (f := facts.get(r)) is not None and _keepable(f)]
    names = {r for r, _ in keepable}
    kept = keep_rows(client, ledger, remote_root, root_id, keepable, DELETED, stopped)
    return kept, [g for g in gone if g[0] not in names], len(kept) == len(keepable)
