"""This machine's identity in a fleet: a stable host ID and a readable name.

The ID is made once (random, 32 hex digits) and kept in ``<state_dir>/host_id`` (mode 0600):
it survives restarts, a renamed machine and a new container of the same volume, and two
machines with the same hostname (every container is called after its image) still differ.
The name is what people read (``status --fleet``, the per-host remote folder): the
``fleet.host`` setting, or the machine's hostname. Neither is a secret.

Also the pure part of the per-host remote folders (which folder a root maps to on a shared
ledger; see :mod:`syncagent.fleet`), here so ``restore`` and ``ls`` need no SQLAlchemy.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from syncagent.config import RootConfig, SyncConfig
from syncagent.errors import StateError

__all__ = [
    "HOST_FILE",
    "HOST_PLACEHOLDER",
    "Host",
    "host_name",
    "host_remote",
    "is_shared",
    "load_host",
    "mapped_config",
    "mapped_root",
    "read_host_id",
    "remote_safe",
]

HOST_PLACEHOLDER = "{host}"

HOST_FILE = "host_id"
_ID = re.compile(r"^[0-9a-f]{32}$")
_UNSAFE = re.compile(r'[/"\\:*?|><\x00-\x1f]')  # what a 123pan folder name cannot hold


@dataclass(frozen=True)
class Host:
    id: str
    name: str


def host_name(config: SyncConfig) -> str:
    """``fleet.host``, or this machine's hostname."""
    return config.fleet_host or socket.gethostname() or "localhost"


def remote_safe(name: str) -> str:
    """``name`` as a 123pan folder name (characters 123pan refuses become ``_``)."""
    return _UNSAFE.sub("_", name).strip(" .") or "host"


def read_host_id(state_dir: Path) -> str | None:
    """The host ID kept in ``state_dir``, without making one (None: none yet, or unreadable)."""
    try:
        value = (state_dir / HOST_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeError):
        return None
    return value if _ID.match(value) else None


def load_host(config: SyncConfig) -> Host:
    """This host: its ID (made and kept on first use) and its name.

    :raises StateError: the state dir cannot hold the ID.
    """
    state_dir = config.state_dir
    existing = read_host_id(state_dir)
    if existing is not None:
        return Host(existing, host_name(config))
    path = state_dir / HOST_FILE
    new = secrets.token_hex(16)
    tmp = path.with_name(f"{HOST_FILE}.{os.getpid()}.tmp")
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(new + "\n")
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # never replaces an ID another process kept first
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise StateError(
            f"cannot keep this host's ID in {state_dir}: {exc.strerror or exc}"
        ) from exc
    kept = read_host_id(state_dir)
    if kept is None:
        raise StateError(f"{path} does not hold a host ID: remove it, a new one is made")
    return Host(kept, host_name(config))


def is_shared(config: SyncConfig, ledger_url: str) -> bool:
    """Whether hosts share the ledger: ``fleet.shared``, or (auto) it is not SQLite."""
    if config.fleet_shared != "auto":
        return config.fleet_shared == "on"
    return not ledger_url.startswith("sqlite")


def host_remote(remote: str, host_name: str) -> str:
    """``/parent/name`` as ``/parent/<host>/name`` (``/`` as ``/<host>``)."""
    path = PurePosixPath(remote)
    safe = remote_safe(host_name)
    if path == PurePosixPath("/"):
        return f"/{safe}"
    return str(path.parent / safe / path.name)


def mapped_root(root: RootConfig, host_name: str, shared: bool, recorded: str | None) -> str:
    """The remote folder this host backs ``root`` up into; ``recorded``: the folder the
    root's existing row records (kept when it is the configured folder itself)."""
    if HOST_PLACEHOLDER in root.remote:
        return str(PurePosixPath(root.remote.replace(HOST_PLACEHOLDER, remote_safe(host_name))))
    if not shared or root.shared_remote or recorded == root.remote:
        return root.remote
    return host_remote(root.remote, host_name)


def mapped_config(config: SyncConfig, host_name: str) -> SyncConfig:
    """``config`` with each root's remote folder as this host backs up into it, without a
    ledger (``restore`` and ``ls``; :func:`syncagent.fleet.effective_config` adds the
    exception for a root recorded in its configured folder)."""
    shared = is_shared(config, config.ledger_url)
    return dataclasses.replace(
        config,
        roots=tuple(
            dataclasses.replace(r, remote=mapped_root(r, host_name, shared, None))
            for r in config.roots
        ),
    )
