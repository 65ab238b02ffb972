"""Keeping each root's catalog current, at the end of a pass.

A root whose pass changed something gets its entries rebuilt; when their digest differs from
the one last published (kept in the ledger's ``kv`` table, key ``catalog.<root id>``), a new
catalog is published. A no-op pass costs one ``kv`` query: nothing is walked or uploaded,
unless the last publication of a root failed (value ``stale``), which is tried again. (A
ledger from before catalogs existed gets one with its next change, not on a no-op pass.)
A failure is logged and never fails the pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from syncagent.config import RootConfig, SyncConfig
from syncagent.errors import RemoteError, SyncAgentError
from syncagent.ledger import Ledger, repo

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client

__all__ = ["STALE", "CatalogKeeper"]

log = logging.getLogger("syncagent")

STALE = "stale"
KEY_PREFIX = "catalog."


def key(root_id: int) -> str:
    return f"{KEY_PREFIX}{root_id}"


class CatalogKeeper:
    """Publishes catalogs for one configuration; ``client`` is made only when needed."""

    def __init__(
        self, config: SyncConfig, ledger: Ledger, client: Callable[[], Pan123Client]
    ) -> None:
        self.config = config
        self.ledger = ledger
        self._client = client
        self.published: list[str] = []  # object names, for the caller's report

    def after_pass(self, roots: Sequence[tuple[RootConfig, int, bool]]) -> None:
        """``roots``: (root, root id, whether its pass changed anything)."""
        if not roots:
            return
        known = repo.get_values(self.ledger, KEY_PREFIX)
        for root, root_id, changed in roots:
            last = known.get(key(root_id))
            if not changed and last != STALE:
                continue
            try:
                self._refresh(root, root_id, last)
            except (RemoteError, OSError, SyncAgentError) as exc:
                log.warning("the catalog of %s was not published: %s", root.local, exc)
                repo.set_value(self.ledger, key(root_id), STALE)

    def _refresh(self, root: RootConfig, root_id: int, last: str | None) -> None:
        # loaded here: a no-op pass never needs them
        from syncagent.catalog.build import build_entries
        from syncagent.catalog.format import Header, digest, encode, entry_lines, host_name
        from syncagent.catalog.remote import object_name, publish
        from syncagent.ignore import IgnoreRules

        ignore = IgnoreRules.for_root(root.local, root.ignore, own=self.config.own_paths)
        from syncagent.versions import catalog_entries

        lines = entry_lines(
            [
                *build_entries(self.ledger, root_id, root.local, ignore),
                *catalog_entries(self.ledger, root_id),
            ]
        )
        new = digest(lines)
        if new == last:
            return
        client = self._client()
        _, remote_id = repo.ensure_root(self.ledger, str(root.local), root.remote, root.mode)
        if remote_id is None:
            remote_id = client.ensure_dir(0, root.remote.strip("/"))
            repo.set_root_remote(self.ledger, root_id, remote_id)
        now = time.time()
        header = Header(host_name(), str(root.local), root.remote, now)
        name = object_name(new, now)
        publish(client, remote_id, encode(header, lines), name)
        repo.set_value(self.ledger, key(root_id), new)
        self.published.append(name)
