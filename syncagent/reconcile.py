"""A root's ledger against the cloud, before a pass trusts it (used by the engine).

Per root and pass, in this order:

1. **Binding.** The root's rows are bound to an account (API base, client ID, uid) and a
   remote folder (:mod:`syncagent.binding`). When either differs (real credentials after the
   embedded emulator, ``PAN123_API_BASE`` pointing elsewhere, a changed ``remote:``), the
   user is told first, the rows become pending and the remote folder is resolved again, so
   the pass plans against the remote: files 123pan holds with the same size and MD5 are
   adopted (:mod:`syncagent.adopt`), the rest uploaded. No local read is needed for this
   decision: a no-op pass stays a stat walk.
2. **Uploads awaiting verification** (state ``uploaded``: a crash came between 123pan's
   acceptance and the batch verification) are verified now, not sent again.
3. **Remote check** (periodic, in ``run``): the root's folder and a rotating sample of done
   files (:mod:`syncagent.remote_check`); what is gone becomes pending and is sent again.
4. Before uploading, the root's remote folder is checked once per pass (one ``detail`` per
   level); a trashed or deleted folder is re-created and the root's files sent again.

Only the pass's plan changes here; the upload path itself is the engine's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from syncagent.adopt import Adoption, adopt, remote_tree
from syncagent.binding import Account, binding_change
from syncagent.config import RootConfig
from syncagent.ledger import Ledger, repo, trust
from syncagent.model import Upload
from syncagent.remote_check import check_claims, folder_gone

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client

__all__ = ["Reconciler"]

log = logging.getLogger("syncagent")


class Reconciler:
    """The checks of one pass.

    :param account: where this run backs up (None: read from the client, for tests).
    :param sample: done files checked per root by the periodic remote check (0: none).
    """

    def __init__(
        self,
        ledger: Ledger,
        client: Callable[[], Pan123Client],
        account: Account | None,
        *,
        dry_run: bool = False,
        workers: int = 4,
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        self.ledger = ledger
        self._client = client
        self._account = account
        self.dry_run = dry_run
        self.workers = workers
        self.stopped = stopped
        self.notices: list[str] = []
        self._uid: int | None = None
        self._alive: set[int] = set()  # remote root folders checked this pass

    @property
    def account(self) -> Account:
        if self._account is None:
            client = self._client()
            self._account = Account(client.transport.api_base, client.client_id)
        return self._account

    def _account_uid(self) -> int | None:
        if self._uid is None:
            uid = self._client().user_info().get("uid")
            self._uid = int(uid) if isinstance(uid, int | str) and str(uid).isdigit() else None
        return self._uid

    def before_scan(
        self, root: RootConfig, root_id: int, known_remote: int | None, *, sample: int = 0
    ) -> tuple[int | None, bool]:
        """Steps 1–3. :returns: (the root's remote folder ID if still trusted, whether any row
        changed, so the pass must not take the no-op short cut)."""
        bound, rows, awaiting = trust.root_binding(self.ledger, root_id)
        if self.dry_run and self._account is None:  # no client to ask: the remote folder only
            if bound.remote_path == root.remote:
                return known_remote, False
            why: str | None = f"its remote folder changed from {bound.remote_path} to {root.remote}"
        else:
            why = binding_change(bound, self.account, root.remote)
        if why is None and sample and bound.uid is not None and not self.dry_run:
            why = binding_change(bound, self.account, root.remote, self._account_uid())
        if why is not None:
            if rows:
                notice = (
                    f"{root.local}: {why}: checking what 123pan already holds in {root.remote} "
                    "(files with the same size and MD5 are adopted, the rest uploaded)"
                )
                self.notices.append(notice)
                log.warning("%s", notice)
            if self.dry_run:
                return None, bool(rows)
            uid = self._account_uid()
            trust.bind_root(
                self.ledger,
                root_id,
                self.account,
                uid,
                root.remote,
                reason=f"to be checked against {root.remote} on the new account or folder"
                if rows
                else None,
            )
            return None, bool(rows)
        changed = False
        if awaiting and not self.dry_run:
            changed |= self._confirm_uploaded(root, root_id)
        if sample and known_remote is not None and root.mode != "move" and not self.dry_run:
            known_remote, found = self._remote_check(root, root_id, known_remote, sample)
            changed |= found
        return known_remote, changed

    def _confirm_uploaded(self, root: RootConfig, root_id: int) -> bool:
        claims = trust.awaiting_verification(self.ledger, root_id)
        folder = _root_folder(self.ledger, root_id)
        good, bad = check_claims(self._client(), claims, folder) if folder else ([], [])
        if folder is None:
            bad = [(c, "its remote folder is unknown") for c in claims]
        trust.confirm(self.ledger, root_id, [c.rel_path for c in good])
        if root.mode == "move":  # what the interrupted pass would have done once verified
            for c in good:
                _delete_local(root.local / c.rel_path, c)
        for c, problem in bad:
            log.info(
                "%s: uploaded before a stop, but %s: sent again", root.local / c.rel_path, problem
            )
        trust.requeue(
            self.ledger, root_id, [c.rel_path for c, _ in bad], "not verified after a stop"
        )
        log.info(
            "%s: %d uploads from an interrupted pass verified, %d to send again",
            root.local,
            len(good),
            len(bad),
        )
        return True

    def _remote_check(
        self, root: RootConfig, root_id: int, remote_id: int, sample: int
    ) -> tuple[int | None, bool]:
        """The periodic check: the root's folder, then the next ``sample`` done files."""
        if self.root_alive(root, root_id, remote_id) is None:
            return None, True
        key = f"remote_check:{root_id}"
        after = trust.get_cursor(self.ledger, key)
        claims = trust.sample_done(self.ledger, root_id, after, sample)
        if len(claims) < sample and after:  # wrap around to the start
            claims += trust.sample_done(self.ledger, root_id, 0, sample - len(claims))
        if not claims:
            return remote_id, False
        _, bad = check_claims(self._client(), claims, remote_id)
        trust.set_cursor(self.ledger, key, claims[-1].row_id)
        for c, problem in bad:
            log.warning("%s: %s: it is uploaded again", root.local / c.rel_path, problem)
        trust.requeue(
            self.ledger,
            root_id,
            [c.rel_path for c, _ in bad],
            "its 123pan copy was gone or different (remote check)",
        )
        log.info("%s: remote check of %d files: %d gone", root.local, len(claims), len(bad))
        return remote_id, bool(bad)

    def root_alive(self, root: RootConfig, root_id: int, remote_id: int) -> int | None:
        """Step 4: the root's remote folder ID, or None (and its rows pending) when it was
        trashed or deleted on 123pan. Checked once per pass."""
        if remote_id in self._alive:
            return remote_id
        gone = folder_gone(self._client(), remote_id)
        if gone is None:
            self._alive.add(remote_id)
            return remote_id
        notice = f"{root.local}: its 123pan folder {root.remote} is {gone}: it is created again"
        log.warning("%s", notice)
        self.notices.append(notice)
        trust.reset_remote(
            self.ledger, root_id, f"its 123pan folder {root.remote} was {gone}: to send again"
        )
        return None

    def resolve(
        self, root: RootConfig, root_id: int, uploads: list[Upload], pass_id: int
    ) -> tuple[int, Adoption]:
        """The root's remote folder resolved afresh (created if missing), its tree listed,
        and the uploads 123pan already holds adopted (recorded done, not sent)."""
        client = self._client()
        top = root.remote.strip("/")
        client.dirs.flush(0, top.split("/", 1)[0])  # IDs cached before a trash are stale
        remote_id = client.ensure_dir(0, top)
        adoption = adopt(
            root.local,
            uploads,
            remote_tree(client, remote_id),
            workers=self.workers,
            stopped=self.stopped,
        )
        repo.record_done(
            self.ledger,
            [
                repo.Done(root_id, a.entry, a.md5, a.remote.file_id, a.upload.remote_rel)
                for a in adoption.adopted
            ],
            pass_id,
        )
        repo.set_root_remote(self.ledger, root_id, remote_id)
        self._alive.add(remote_id)
        if adoption.adopted:
            log.info(
                "%s: %d files already on 123pan with the same size and MD5: adopted, not sent",
                root.local,
                len(adoption.adopted),
            )
        return remote_id, adoption


def _delete_local(path: Path, claim: trust.Claim) -> None:
    """Move mode: remove a file verified on 123pan, unless it changed since it was sent."""
    try:
        st = os.stat(path, follow_symlinks=False)
        if (st.st_size, st.st_mtime_ns, st.st_ino) != (claim.size, claim.mtime_ns, claim.inode):
            log.info("%s changed after its upload; kept", path)
            return
        os.unlink(path)
    except OSError as exc:
        log.warning("cannot delete %s after its upload: %s", path, exc.strerror)


def _root_folder(ledger: Ledger, root_id: int) -> int | None:
    from sqlalchemy import select

    from syncagent.ledger.models import Root

    with ledger.session() as s:
        return s.scalar(select(Root.remote_id).where(Root.id == root_id))
