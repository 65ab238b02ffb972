"""``syncagent doctor``: checks what commonly goes wrong, each as ok / warn / fail with the fix.

The checks are pure functions of facts (:func:`check_inotify`, :func:`check_filesystem`,
:func:`check_clock`, ...); :func:`gather` reads the facts (``/proc``, the state dir, one
request to 123pan for the ``Date`` header and one ``user/info`` call through the client) and
runs them. Nothing is changed but the cached access token (fetched if there is none, as
any command would).
"""

from __future__ import annotations

import dataclasses
import email.utils
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from syncagent.errors import AuthError, RemoteError, SyncAgentError

if TYPE_CHECKING:
    from syncagent.config import SyncConfig
    from syncagent.pan123 import Pan123Client

__all__ = [
    "Check",
    "check_clock",
    "check_filesystem",
    "check_inotify",
    "check_space",
    "check_state_mode",
    "gather",
    "mount_type",
]

Status = Literal["ok", "warn", "fail"]
NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p", "fuse.rclone", "afs"}
INOTIFY_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
CLOCK_WARN = 60.0  # seconds off the server's clock: tokens expire early or late
CLOCK_FAIL = 600.0
LOW_SPACE = 1 << 30  # the ledger and chunked-upload state grow with the tree


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def check_inotify(
    watches_limit: int | None, instances_limit: int | None, folders: int, inotify_roots: int
) -> Check:
    """Is the inotify watch limit above the number of folders to watch? Pure."""
    if inotify_roots == 0:
        return Check("inotify", "ok", "no root is watched with inotify (all polled)")
    if watches_limit is None:
        return Check("inotify", "warn", "cannot read the inotify limits", "")
    sysctl = "sysctl fs.inotify.max_user_watches="
    if folders >= watches_limit:
        return Check(
            "inotify",
            "fail",
            f"{folders} folders to watch, but max_user_watches is {watches_limit}: changes "
            "in some folders go unnoticed until the hourly rescan",
            f"raise it: {sysctl}{max(2 * folders, 524288)} (and in /etc/sysctl.d/)",
        )
    if folders >= 0.8 * watches_limit:
        return Check(
            "inotify",
            "warn",
            f"{folders} folders to watch of max_user_watches {watches_limit}",
            f"raise it: {sysctl}{max(2 * folders, 524288)}",
        )
    if instances_limit is not None and instances_limit < inotify_roots + 8:
        return Check(
            "inotify",
            "warn",
            f"max_user_instances is {instances_limit} for {inotify_roots} watched roots",
            "raise it: sysctl fs.inotify.max_user_instances=512",
        )
    return Check("inotify", "ok", f"{folders} folders to watch, limit {watches_limit}")


def mount_type(path: Path, mounts: str) -> str | None:
    """The filesystem type of ``path`` from the text of ``/proc/mounts``. Pure."""
    best, kind = "", None
    text = str(path)
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = text == point or text.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind


def check_filesystem(
    root: Path, exists: bool, readable: bool, fstype: str | None, watch: str
) -> Check:
    """Is the root there, readable, and on a filesystem whose changes inotify sees? Pure."""
    name = f"root {root}"
    if not exists:
        return Check(name, "fail", "does not exist (unmounted?)", "mount it or fix roots[].local")
    if not readable:
        return Check(name, "fail", "cannot be read by this user", "grant read access")
    if fstype in NETWORK_FS and watch != "poll":
        return Check(
            name,
            "warn",
            f"is on {fstype}: inotify does not see changes made by other machines",
            "set watch: poll for this root",
        )
    return Check(name, "ok", f"readable ({fstype or 'unknown filesystem'})")


def check_clock(offset: float | None, server: str) -> Check:
    """How far this machine's clock is from 123pan's (``Date`` header). Pure."""
    if offset is None:
        return Check("clock", "warn", f"{server} sent no usable Date header")
    how = f"{abs(offset):.0f} s {'behind' if offset > 0 else 'ahead of'} {server}"
    if abs(offset) >= CLOCK_FAIL:
        return Check("clock", "fail", how, "synchronise the clock (systemd-timesyncd, chrony)")
    if abs(offset) >= CLOCK_WARN:
        return Check("clock", "warn", how, "synchronise the clock (systemd-timesyncd, chrony)")
    return Check("clock", "ok", how)


def check_state_mode(state_dir: Path, mode: int | None) -> Check:
    """The state dir holds the token and the list of every backed-up path: private. Pure."""
    if mode is None:
        return Check("state dir", "ok", f"{state_dir} is made (0700) on first use")
    if mode & 0o077:
        return Check(
            "state dir",
            "warn",
            f"{state_dir} is mode {mode & 0o777:04o}: others can read the token and ledger",
            f"chmod 700 {state_dir} (sync and run also do it)",
        )
    return Check("state dir", "ok", f"{state_dir} is private ({mode & 0o777:04o})")


def check_space(where: Path, free: int | None) -> Check:
    """Free space where the ledger lives. Pure."""
    if free is None:
        return Check("free space", "warn", f"cannot read free space at {where}")
    if free < LOW_SPACE // 10:
        return Check("free space", "fail", f"{free >> 20} MiB free at {where}", "free some space")
    if free < LOW_SPACE:
        return Check("free space", "warn", f"{free >> 20} MiB free at {where}", "free some space")
    return Check("free space", "ok", f"{free >> 30} GiB free at {where}")


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _folders(roots: Iterable[Path], cap: int = 2_000_000) -> int:
    count = 0
    for root in roots:
        for _ in os.walk(root):
            count += 1
            if count >= cap:
                return count
    return count


def server_offset(api_base: str, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server's clock is ahead of this machine's, from one ``Date`` header."""
    request = urllib.request.Request(api_base.rstrip("/") + "/", method="GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            date = answer.headers.get("Date")
    except urllib.error.HTTPError as err:  # any answer carries a Date
        date = err.headers.get("Date")
    except (OSError, ValueError):
        return None
    if not date:
        return None
    try:
        return email.utils.parsedate_to_datetime(date).timestamp() - now()
    except (TypeError, ValueError):
        return None


def check_account(client: Pan123Client) -> list[Check]:
    """Credentials, reachability and quota, from one ``user/info`` call."""
    try:
        info: dict[str, Any] = client.user_info()
    except AuthError as err:
        return [
            Check(
                "credentials",
                "fail",
                f"123pan refused them: {err.message}",
                "check PAN123_CLIENT_ID and PAN123_CLIENT_SECRET (or credentials: in sync.yaml)",
            )
        ]
    except RemoteError as err:
        return [Check("123pan", "fail", f"not reachable: {err}", "check the network and api_base")]
    checks = [Check("credentials", "ok", f"accepted (uid {info.get('uid')})")]
    total = int(info.get("spacePermanent") or 0) + int(info.get("spaceTemp") or 0)
    free = total - int(info.get("spaceUsed") or 0)
    if total and free <= 0:
        checks.append(Check("quota", "fail", "no space left on 123pan", "free space or upgrade"))
    elif total:
        checks.append(Check("quota", "ok", f"{free / 2**30:.1f} GiB free on 123pan"))
    return checks


def gather(
    config: SyncConfig,
    client: Callable[[], Pan123Client] | None,
    *,
    watches_file: Path = INOTIFY_WATCHES,
) -> list[Check]:
    """Read the facts and run every check. ``client`` is called once, for the account; None
    when no credentials are set (the embedded emulator is used: nothing to check there)."""
    checks: list[Check] = []
    try:
        mounts = Path("/proc/mounts").read_text()
    except OSError:
        mounts = ""
    present = []
    for root in config.roots:
        exists = root.local.is_dir()
        readable = exists and os.access(root.local, os.R_OK | os.X_OK)
        if readable:
            present.append(root)
        fstype = mount_type(root.local, mounts) if exists else None
        checks.append(check_filesystem(root.local, exists, readable, fstype, root.watch))
    inotify_roots = [r.local for r in present if r.watch != "poll"]
    checks.append(
        check_inotify(
            _read_int(watches_file),
            _read_int(INOTIFY_INSTANCES),
            _folders(inotify_roots),
            len(inotify_roots),
        )
    )
    try:
        mode: int | None = config.state_dir.stat().st_mode
    except OSError:
        mode = None
    checks.append(check_state_mode(config.state_dir, mode))
    where = config.state_dir if mode is not None else config.state_dir.parent
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free: int | None = shutil.disk_usage(where).free
    except OSError:
        free = None
    checks.append(check_space(where, free))
    if client is None:
        checks.append(
            Check(
                "credentials",
                "warn",
                "none set: backups go to the embedded local emulator, not to 123pan",
                "set PAN123_CLIENT_ID and PAN123_CLIENT_SECRET",
            )
        )
        return checks
    checks.append(check_clock(server_offset(config.api_base), config.api_base))
    try:
        account = check_account(client())
        if config.credentials is not None:  # which credentials, never the values
            shown = config.credentials.fingerprint
            account = [
                dataclasses.replace(c, detail=f"{c.detail} [{shown}]")
                if c.name == "credentials"
                else c
                for c in account
            ]
        checks.extend(account)
    except SyncAgentError as err:
        checks.append(Check("123pan", "fail", err.message))
    return checks
