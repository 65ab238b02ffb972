"""A fleet on one ledger: hosts, their own remote folders, and one view of them all.

Owns three things:

- **Registration** (:func:`register`): a command that opens the ledger records this host
  (``hosts`` row: ID, name, first and last seen) and scopes the ledger to it
  (``ledger.host_id``), so its roots and passes are its own. Roots and passes of a ledger
  made before hosts existed belong to no host; the first host that registers claims them.
- **Per-host remote folders** (:func:`effective_config`): when the ledger is shared (the
  ``fleet.shared`` setting; ``auto``: when it is not an SQLite file), a root configured as
  ``/parent/name`` backs up into ``/parent/<host>/name``, so two hosts that both back up
  ``/data`` never overwrite (or, mirroring, trash) each other's files. Not re-mapped: a root
  with ``shared_remote: true`` (the hosts mean to share the folder), a ``remote:`` that
  places ``{host}`` itself (replaced by the host name, shared ledger or not), and a root whose
  existing row was made for the configured folder itself (a single agent that later moved
  to a shared ledger keeps its folder: no silent re-map, no second upload).
- **The fleet view** (:func:`fleet_status`): every host, when it was last seen, its last
  pass, and per root the counts of pending, failed and done files and whether the
  mass-change guard holds it (``syncagent status --fleet``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

from sqlalchemy import func, select, text, update

from syncagent.config import SyncConfig
from syncagent.host import (
    HOST_PLACEHOLDER,
    Host,
    host_remote,
    is_shared,
    mapped_config,
    mapped_root,
    read_host_id,
)
from syncagent.ledger import Ledger
from syncagent.ledger.models import FileRow, PassRow, Root
from syncagent.ledger.models import Host as HostRow
from syncagent.model import FileState

__all__ = [
    "HOST_PLACEHOLDER",
    "FleetHost",
    "FleetRoot",
    "effective_config",
    "fleet_status",
    "host_remote",
    "is_shared",
    "register",
    "scope_read_only",
]  # (HOST_PLACEHOLDER, host_remote, is_shared: from syncagent.host, re-exported)

log = logging.getLogger("syncagent")


def register(ledger: Ledger, host: Host, now: float | None = None) -> None:
    """Record this host in the ledger (seen now), claim rows of no host, and scope the
    ledger to it. One transaction."""
    now = time.time() if now is None else now
    with ledger.write() as conn:
        conn.execute(
            text(
                "INSERT INTO hosts (id, name, first_seen, last_seen) "
                "VALUES (:id, :name, :now, :now) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                "last_seen = excluded.last_seen"
            ),
            {"id": host.id, "name": host.name, "now": now},
        )
        conn.execute(update(Root).where(Root.host_id.is_(None)).values(host_id=host.id))
        conn.execute(update(PassRow).where(PassRow.host_id.is_(None)).values(host_id=host.id))
        namesakes = conn.execute(
            select(HostRow.id).where(HostRow.name == host.name, HostRow.id != host.id)
        ).all()
    ledger.host_id = host.id
    if namesakes:
        log.warning(
            "another host of the ledger %s is also called %r (ID %s): hosts of one name share "
            "their per-host remote folders; give each its own fleet.host (a host whose state "
            "dir was lost comes back under a new ID: then this is that old one)",
            ledger.url,
            host.name,
            str(namesakes[0][0])[:8],
        )


def scope_read_only(ledger: Ledger, config: SyncConfig) -> None:
    """A ledger opened read-only (a dry run): scoped to this host if it has an ID yet,
    nothing written."""
    ledger.host_id = read_host_id(config.state_dir)


def effective_config(config: SyncConfig, ledger: Ledger | None, host_name: str) -> SyncConfig:
    """``config`` with each root's remote folder as this host backs up into it.

    ``ledger`` None (``restore`` and ``ls`` open none): the mapping alone, without the
    exception for a root recorded in its configured folder.
    """
    shared = is_shared(config, config.ledger_url)
    placed = any(HOST_PLACEHOLDER in r.remote for r in config.roots)
    if not config.roots or (not shared and not placed):
        return config
    if ledger is None:
        return mapped_config(config, host_name)
    with ledger.session(write=False) as conn:
        mine = Root.host_id.is_(None) if ledger.host_id is None else Root.host_id == ledger.host_id
        recorded = dict(
            (str(a), str(b))
            for a, b in conn.execute(select(Root.local_path, Root.remote_path).where(mine))
        )
    roots = tuple(
        dataclasses.replace(r, remote=mapped_root(r, host_name, shared, recorded.get(str(r.local))))
        for r in config.roots
    )
    return dataclasses.replace(config, roots=roots)


@dataclass(frozen=True)
class FleetRoot:
    local_path: str
    remote_path: str
    done: int
    pending: int  # pending, or uploaded and not verified yet
    failed: int
    held: bool  # the mass-change guard holds its passes


@dataclass(frozen=True)
class FleetHost:
    id: str
    name: str
    first_seen: float
    last_seen: float
    last_pass_at: float | None
    last_pass_result: str | None  # None: running or interrupted (or no pass yet)
    last_pass_uploaded: int
    last_pass_failed: int
    roots: tuple[FleetRoot, ...]


_PENDING = (FileState.PENDING.value, FileState.UPLOADED.value)


def fleet_status(ledger: Ledger) -> list[FleetHost]:
    """Every host of the ledger, by name, with its roots and its last pass (four queries,
    however many hosts)."""
    from syncagent.ledger import repo

    holds = repo.guard_state(ledger)[0]
    with ledger.session(write=False) as conn:
        hosts = conn.execute(
            select(HostRow.id, HostRow.name, HostRow.first_seen, HostRow.last_seen).order_by(
                HostRow.name, HostRow.id
            )
        ).all()
        roots = conn.execute(
            select(Root.id, Root.host_id, Root.local_path, Root.remote_path).order_by(Root.id)
        ).all()
        counts: dict[int, dict[str, int]] = {}
        for root_id, state, n in conn.execute(
            select(FileRow.root_id, FileRow.state, func.count()).group_by(
                FileRow.root_id, FileRow.state
            )
        ):
            counts.setdefault(int(root_id), {})[str(state)] = int(n)
        newest = select(func.max(PassRow.id).label("id")).group_by(PassRow.host_id).subquery()
        passes = {
            str(r.host_id): r
            for r in conn.execute(
                select(
                    PassRow.host_id,
                    PassRow.started_at,
                    PassRow.result,
                    PassRow.uploaded,
                    PassRow.failed,
                ).where(PassRow.id.in_(select(newest.c.id)))
            )
        }
    out = []
    for host_id, name, first_seen, last_seen in hosts:
        own = tuple(
            FleetRoot(
                str(local),
                str(remote),
                counts.get(root_id, {}).get(FileState.DONE.value, 0),
                sum(counts.get(root_id, {}).get(s, 0) for s in _PENDING),
                counts.get(root_id, {}).get(FileState.FAILED.value, 0),
                root_id in holds,
            )
            for root_id, owner, local, remote in roots
            if owner == host_id
        )
        last = passes.get(str(host_id))
        out.append(
            FleetHost(
                str(host_id),
                str(name),
                float(first_seen),
                float(last_seen),
                None if last is None else float(last.started_at),
                None if last is None else last.result,
                0 if last is None else int(last.uploaded),
                0 if last is None else int(last.failed),
                own,
            )
        )
    return out
