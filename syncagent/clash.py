"""An entry of the other kind in the way of an upload on 123pan: kept aside as a version.

123pan cannot hold a file and a folder under one name. When the ledger knows the old entry,
:mod:`syncagent.replaced` deals with it before the pass uploads anything. This module is for
the entries it does not know (made in the web app, left by a pass that died before it
recorded them, or a ledger rebuilt without them): an upload then fails with a name conflict,
and before this it failed on every pass, forever.

:func:`clear_way` walks the upload's remote path from the root's folder and finds the first
entry of the wrong kind: a file where a folder is needed, or a folder where the file goes.
Unless a ledger row still claims it (a file present locally uses that name: then the clash is
the user's to resolve, and the reason says so), it is kept aside, never deleted:

- a file: as a version of the *local* path it stood for (``x:y``, not the 123pan name
  ``x：y``), exactly as a changed file's previous copy (:func:`syncagent.versions.keep_aside`);
- a folder: renamed ``<UTC time>~<name>`` and moved, whole, below
  ``.syncagent/versions/<its remote path>/`` (no ledger record: its files were not the
  ledger's; it is found there in the web app).

The caller then sends the file again. (What the ledger *does* know is kept aside before the
uploads by :mod:`syncagent.set_aside`.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from syncagent.errors import RemoteConflictError
from syncagent.ledger import Ledger, repo
from syncagent.model import FileState, LedgerFacts
from syncagent.versions import VERSIONS_DIR, keep_aside, version_name

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client

__all__ = ["clear_way"]

log = logging.getLogger("syncagent")


def _claimant(facts: Mapping[str, LedgerFacts], remote: str, folder: bool) -> str | None:
    """The local path of a ledger row (not gone) whose 123pan copy is ``remote`` (a file) or
    lies below it (``folder``)."""
    for rel, f in facts.items():
        if f.state == FileState.GONE or not f.remote_name:
            continue
        if f.remote_name == remote or (folder and f.remote_name.startswith(remote + "/")):
            return rel
    return None


def clear_way(
    client: Pan123Client,
    ledger: Ledger,
    remote_root: int,
    root_id: int,
    local_rel: str,
    remote_rel: str,
) -> bool:
    """Keep aside what of the other kind is in the way of uploading ``local_rel`` to
    ``remote_rel``; True when something was moved (the upload is worth another try).

    :raises RemoteConflictError: the entry in the way is claimed by a ledger row (another
        local file uses that name): the clash is the user's to resolve, the reason says so.
    """
    segs = remote_rel.split("/")
    local = local_rel.split("/")
    if len(local) != len(segs):  # names map segment by segment; never expected
        local = segs
    parent = remote_root
    for i, name in enumerate(segs):
        here = "/".join(segs[: i + 1])
        last = i == len(segs) - 1
        items = [f for f in client.list_folder(parent) if f.name == name and not f.trashed]
        folder = next((f for f in items if f.is_folder), None)
        file = next((f for f in items if not f.is_folder), None)
        if last:
            if folder is None:
                return False
            _check_free(ledger, root_id, here, folder=True, what=f"a folder {here!r}")
            _keep_folder(client, remote_root, here, folder.file_id)
            log.warning(
                "%s: the 123pan folder %s was in its way; kept aside below %s/%s",
                local_rel, here, VERSIONS_DIR, here,
            )  # fmt: skip
            return True
        if file is not None:
            _check_free(ledger, root_id, here, folder=False, what=f"a file {here!r}")
            owner = "/".join(local[: i + 1])  # the local path it stood for, not its 123pan name
            keep_aside(
                client, ledger, remote_root, root_id, file.file_id, owner, here, file.size,
                file.etag, 0, why="displaced",
            )  # fmt: skip
            client.dirs.flush(remote_root, here)
            log.warning(
                "%s: the 123pan file %s was in the way of its folder; kept as a version of %s",
                local_rel, here, owner,
            )  # fmt: skip
            return True
        if folder is None:
            return False  # nothing of that name: the conflict was elsewhere, or is gone
        parent = folder.file_id
    return False


def _check_free(ledger: Ledger, root_id: int, remote: str, *, folder: bool, what: str) -> None:
    claimant = _claimant(repo.load_facts(ledger, root_id), remote, folder)
    if claimant is not None:
        raise RemoteConflictError(
            f"its 123pan name is taken by {what}, which holds the backup of {claimant!r} "
            "(names differing only in characters 123pan maps)"
        )


def _keep_folder(client: Pan123Client, remote_root: int, remote: str, folder_id: int) -> None:
    """Rename the folder in place (freeing its name at once), then move it into the versions
    area. A crash between the two leaves it renamed beside its old name: nothing is lost."""
    name = version_name(time.time(), remote)
    client.rename(folder_id, name)
    client.dirs.flush(remote_root, remote)
    client.move([folder_id], client.ensure_dir(remote_root, f"{VERSIONS_DIR}/{remote}"))
