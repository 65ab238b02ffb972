"""What stays home: syncagent's state is private to its user, and its secrets are never backed up.

- The CLI sets the umask to 0077 (``syncagent/cli``), so its processes create folders 0700
  and files 0600 (the ledger and its journals, ``activity.json``, ``agent.lock``, the token,
  the log file, the embedded emulator's store) whatever the user's umask: they list every
  backed-up path or hold credentials.
- :func:`tighten_state`: on start, an existing state dir, ledger or log file that others can
  read is made private, with a log line saying so.
- :func:`announce_own_files`: says once in the log which of syncagent's own files lie inside a
  root and are therefore not backed up (the config in use, the secrets file, the state dir...).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from syncagent.config import SyncConfig
from syncagent.ignore import inside

__all__ = ["announce_own_files", "private_paths", "tighten", "tighten_state"]

log = logging.getLogger("syncagent")


def tighten(path: Path) -> int | None:
    """Take away the group's and others' access to ``path`` (not following a link).

    :returns: the old mode when it was changed, None when it was private already or is absent
        (or is not ours to change).
    """
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o077 or st.st_uid != os.geteuid():
        return None
    try:
        os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode)


def private_paths(config: SyncConfig) -> list[Path]:
    """The state dir, the files in it, an SQLite ledger elsewhere and its journals, the log."""
    paths = [config.state_dir]
    if config.state_dir.is_dir():
        paths += sorted(config.state_dir.rglob("*"))
    if config.ledger_url.startswith("sqlite:///"):
        ledger = Path(config.ledger_url.removeprefix("sqlite:///").split("?", 1)[0])
        paths += [ledger.with_name(ledger.name + s) for s in ("", "-wal", "-shm", "-journal")]
    if config.log_file is not None:
        paths.append(config.log_file)
    return list(dict.fromkeys(paths))


def tighten_state(config: SyncConfig) -> list[Path]:
    """Make the state private if it is not; logs what it changed and returns those paths."""
    changed = []
    for path in private_paths(config):
        old = tighten(path)
        if old is not None:
            changed.append(path)
            log.warning(
                "made %s private (mode %04o -> %04o): it holds syncagent's state",
                path,
                old,
                old & 0o700,
            )
    return changed


def announce_own_files(config: SyncConfig) -> None:
    """One log line naming syncagent's own files that lie inside a root (never backed up)."""
    found: list[Path] = []
    for root in config.roots:
        present = [p for p in config.own_paths if p == config.state_dir or os.path.lexists(p)]
        for rel in inside(root.local, present):
            path = root.local / rel
            if not any(path.is_relative_to(f) for f in found):
                found.append(path)
    if found:
        log.info(
            "not backing up syncagent's own files (config, secrets, token, state): %s",
            ", ".join(map(str, found)),
        )
