"""Comparing the ledger with what 123pan really holds.

For each root, the remote tree below its folder is listed (recycle bin left out) and every file
the ledger calls done is looked up by its remote path: missing, or a different size or etag, is
a problem, said in plain words (:mod:`syncagent.explain`). ``repair`` marks those files
pending, so the next pass uploads them again.

A root whose ledger was made for another account or remote folder (:mod:`syncagent.binding`)
is not compared file by file: its fileIDs mean nothing here, and the problem is said once, in
plain words, with what to do. A remote folder that is gone is reported the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncagent import explain
from syncagent.adopt import remote_tree
from syncagent.binding import Account, binding_change
from syncagent.config import SyncConfig
from syncagent.errors import RemoteError, RemoteNotFoundError
from syncagent.ledger import Ledger, repo, trust
from syncagent.pan123 import Pan123Client
from syncagent.remote_check import folder_gone

__all__ = ["Mismatch", "verify"]


@dataclass(frozen=True)
class Mismatch:
    root: str
    rel_path: str
    problem: str


def verify(
    config: SyncConfig,
    ledger: Ledger,
    client: Pan123Client,
    *,
    repair: bool = False,
    account: Account | None = None,
) -> tuple[int, list[Mismatch]]:
    """(files checked, problems found); with ``repair`` the problem files become pending.

    :param account: where this run backs up (None: the client's API base and client ID).
    """
    account = account or Account(client.transport.api_base, client.client_id)
    checked = 0
    problems: list[Mismatch] = []
    for root in config.roots:
        root_id, remote_id = repo.ensure_root(ledger, str(root.local), root.remote, root.mode)
        done = repo.done_files(ledger, root_id)
        if not done:
            continue
        bound = trust.root_binding(ledger, root_id)[0]
        why = binding_change(bound, account, root.remote)
        if why is not None and bound.api_base is not None:  # unbound: an older ledger
            problems.append(
                Mismatch(
                    str(root.local),
                    "",
                    f"not checked: {why}; `syncagent sync` checks its files against "
                    "this account (files already there are adopted, the rest uploaded)",
                )
            )
            continue
        gone = None if remote_id is None else folder_gone(client, remote_id)
        if remote_id is None or gone is not None:
            problems.append(
                Mismatch(
                    str(root.local),
                    "",
                    f"its 123pan folder {root.remote} is {gone or 'not known yet'}: "
                    f"{len(done)} files are not there; `syncagent sync` sends them again",
                )
            )
            if repair:
                trust.reset_remote(ledger, root_id, f"its 123pan folder {root.remote} is gone")
            continue
        try:
            remote = remote_tree(client, remote_id)
        except RemoteNotFoundError:  # trashed or deleted while it was listed
            problems.append(Mismatch(str(root.local), "", f"{root.remote} vanished on 123pan"))
            continue
        except RemoteError as exc:  # this root is not checked; said in words, the rest go on
            if exc.fatal:
                raise
            problems.append(
                Mismatch(
                    str(root.local),
                    "",
                    "not checked: " + explain.remote_failure(exc, f"listing {root.remote}"),
                )
            )
            continue
        bad: list[str] = []
        for rel_path, remote_name, size, md5 in done:
            checked += 1
            item = remote.get(remote_name or rel_path)
            where = f"{root.remote.rstrip('/')}/{remote_name or rel_path}"
            if item is None:
                problem = explain.missing(where)
            elif item.size != size or item.etag != (md5 or "").lower():
                problem = explain.differs(where, item.size, item.etag, size, md5)
            else:
                continue
            problems.append(Mismatch(str(root.local), rel_path, problem))
            bad.append(rel_path)
        if repair and bad:
            repo.mark_pending(ledger, root_id, bad)
    return checked, problems
