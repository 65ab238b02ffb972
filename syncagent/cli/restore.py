"""``syncagent ls`` and ``syncagent restore``: what is backed up, and getting it back.

Both work on a machine that never ran syncagent: credentials (or the embedded emulator) and
the root's remote folder are enough; no ledger is opened. A sync.yaml, when there is one,
names the roots; without one a root is found under ``/syncagent`` (where ``syncagent sync
FOLDER`` puts it) or given as a remote path.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from syncagent.cli.common import (
    bwlimit_option,
    config_option,
    discover_config,
    fail,
    mb,
    setup_logging,
    shown,
    verbosity_options,
    with_bwlimit,
)
from syncagent.errors import ConfigError, SyncAgentError

if TYPE_CHECKING:
    from syncagent.catalog.format import Entry
    from syncagent.config import SyncConfig
    from syncagent.pan123 import Pan123Client
    from syncagent.restore.source import Source

__all__ = ["ls_command", "restore_command"]

root_option = click.option(
    "--root",
    "root_name",
    default=None,
    metavar="NAME",
    help="The root: a folder name under /syncagent, a remote path (/backup/docs), or a root "
    "of sync.yaml (its local path or folder name). Default: the only one.",
)


def _config(config_path: Path | None) -> SyncConfig:
    """sync.yaml if there is one (its roots name the roots), else the environment only."""
    from syncagent.config import load_config
    from syncagent.host import host_name, mapped_config

    try:
        config = load_config(config_path or discover_config(), roots_required=False)
    except ConfigError as err:
        fail(err)
    return mapped_config(config, host_name(config))  # a fleet: this host's folders


def _say(message: str) -> None:
    click.echo(message, err=True)


def roots_known(config: SyncConfig, client: Pan123Client) -> list[str]:
    """The remote paths of the roots: sync.yaml's, else the folders under /syncagent."""
    from syncagent.restore.source import root_folders

    return [r.remote for r in config.roots] or root_folders(client)


def choose_root(config: SyncConfig, name: str | None, client: Pan123Client) -> str:
    """The remote path of the root to read; ConfigError (exit 2) when it is ambiguous."""
    from syncagent.restore.source import DEFAULT_PARENT

    if name is not None:
        if name.startswith("/"):
            return name.rstrip("/") or "/"
        for r in config.roots:
            if name in (str(r.local), r.local.name, r.remote, r.remote.rsplit("/", 1)[-1]):
                return r.remote
        return f"{DEFAULT_PARENT}/{name.strip('/')}"
    candidates = roots_known(config, client)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ConfigError(
            [
                f"--root: nothing found under {DEFAULT_PARENT}; give the remote path, e.g. "
                "--root /backup/docs"
            ]
        )
    raise ConfigError(
        ["--root: several roots are backed up; choose one of: " + ", ".join(candidates)]
    )


def _origin(source: Source) -> str:
    if source.header is None:
        return (
            f"{source.remote_root}: no catalog found; from the remote listing (names mapped "
            "back; modes, mtimes, empty files, empty folders and links are not known)"
        )
    h = source.header
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.written_at))
    return f"{source.remote_root}: catalog {source.catalog_name} of {h.root} on {h.host}, {when}"


# -- ls ---------------------------------------------------------------------------------------


def _mode(e: Entry) -> str:
    kind = {"dir": "d", "symlink": "l", "file": "-"}[e.kind]
    if e.mode is None:
        return kind + "?????????"
    bits = "rwxrwxrwx"
    return kind + "".join(b if e.mode & (1 << (8 - i)) else "-" for i, b in enumerate(bits))


def _when(ns: int | None) -> str:
    if ns is None:
        return "-" * 16
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ns / 1e9))


def _json(e: Entry) -> dict[str, Any]:
    return {
        "path": e.path,
        "kind": e.kind,
        "size": e.size,
        "md5": e.md5,
        "mtime_ns": e.mtime_ns,
        "mode": None if e.mode is None else f"{e.mode:04o}",
        "file_id": e.file_id,
        "remote": e.remote,
        "target": None if e.target is None else e.target.decode("utf-8", "replace"),
        "state": e.state,
    }


@click.command("ls")
@config_option
@root_option
@click.option("-l", "--long", "long_", is_flag=True, help="Mode, size, date and state too.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--versions", is_flag=True, help="The versions of the file PATH, oldest first.")
@verbosity_options
@click.argument("path", required=False, default="")
def ls_command(
    config_path: Path | None,
    root_name: str | None,
    long_: bool,
    as_json: bool,
    versions: bool,
    verbosity: int,
    path: str,
) -> None:
    """List what is backed up under PATH of a root, with the original names.

    Read from the root's catalog in the cloud (falling back to the remote listing).

    \b
    Example:
      syncagent ls --root Documents
      syncagent ls --root Documents reports/2024 --long
      syncagent ls --root Documents --versions reports/q1.txt
    """
    from syncagent.app import open_client
    from syncagent.restore.source import load

    config = _config(config_path)
    setup_logging(config, verbosity)
    prefix = path.strip("/")
    try:
        with open_client(config, _say) as client:
            roots = [] if root_name else roots_known(config, client)
            if root_name or len(roots) == 1:
                source = load(client, choose_root(config, root_name, client))
    except SyncAgentError as err:
        fail(err)
    if not root_name and len(roots) != 1:  # which roots there are
        if not roots:
            fail(ConfigError(["--root: nothing found under /syncagent; give a remote path"]))
        if as_json:
            click.echo(json.dumps({"roots": roots}, ensure_ascii=False, indent=1))
            return
        _say("several roots are backed up; list one with --root:")
        for r in roots:
            click.echo(shown(r))
        return
    if versions:
        _versions(source, prefix, as_json)
        return
    if prefix and not any(
        e.path == prefix or e.path.startswith(prefix + "/") for e in source.entries
    ):
        fail(ConfigError([f"PATH: {prefix} is not in the backup of {source.remote_root}"]))
    exact = [e for e in source.entries if e.path == prefix and e.kind != "dir"]
    shown_entries = exact or [
        e
        for e in source.entries
        if e.path.startswith(prefix + "/" if prefix else "")
        and "/" not in e.path[len(prefix) :].lstrip("/")
    ]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "root": source.remote_root,
                    "origin": source.origin,
                    "catalog": source.catalog_name or None,
                    "host": source.header.host if source.header else None,
                    "written_at": source.header.written_at if source.header else None,
                    "entries": [_json(e) for e in shown_entries],
                },
                ensure_ascii=False,
                indent=1,
            )
        )
        return
    _say(_origin(source))
    for e in shown_entries:
        name = e.path[len(prefix) :].lstrip("/") if prefix and e.path != prefix else e.path
        if e.kind == "dir":
            name += "/"
        elif e.kind == "symlink":
            name += " -> " + (e.target or b"").decode("utf-8", "replace")
        if long_:
            state = "" if e.state == "done" else f"  [{e.state}]"
            size = "-" if e.kind != "file" else str(e.size)
            click.echo(f"{_mode(e)} {size:>12} {_when(e.mtime_ns)}  {shown(name)}{state}")
        else:
            click.echo(shown(name))


def _versions(source: Source, path: str, as_json: bool) -> None:
    """``ls --versions PATH``: numbered oldest first (the number ``restore --version``
    takes); the current content last."""
    from syncagent.restore.history import history

    found = history(source.entries, source.versions, path)
    if not path or not found:
        fail(ConfigError([f"PATH: {path or '(none)'} is not a file in {source.remote_root}"]))
    rows = [
        {
            "version": n,
            "current": e.superseded is None,
            "superseded_at": e.superseded,
            "size": e.size,
            "md5": e.md5,
            "mtime_ns": e.mtime_ns,
        }
        for n, e in enumerate(found, 1)
    ]
    if as_json:
        click.echo(json.dumps({"path": path, "versions": rows}, ensure_ascii=False, indent=1))
        return
    for row, e in zip(rows, found, strict=True):
        until = (
            "current"
            if e.superseded is None
            else "until " + time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.superseded)) + "Z"
        )
        click.echo(f"{row['version']:>3} {e.size:>12} {_when(e.mtime_ns)}  {until}")


# -- restore ---------------------------------------------------------------------------------


@click.command("restore")
@config_option
@root_option
@click.option(
    "--to",
    "dest",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder to restore into (made if missing).",
)
@click.option("--overwrite", is_flag=True, help="Replace local files and links that differ.")
@click.option("--symlinks-outside", is_flag=True, help="Also create links that point outside --to.")
@click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing.")
@click.option("--at", "at_time", help="Restore as it was at this time (ISO 8601, UTC default).")
@click.option("--version", "version", type=click.IntRange(1), help="Version N of the one PATH.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Parallel downloads [default: 8, or upload.workers if larger].",
)
@bwlimit_option("download")
@verbosity_options
@click.argument("paths", nargs=-1)
def restore_command(
    config_path: Path | None,
    root_name: str | None,
    dest: Path,
    overwrite: bool,
    symlinks_outside: bool,
    dry_run: bool,
    at_time: str | None,
    version: int | None,
    workers: int | None,
    bwlimit: str | None,
    verbosity: int,
    paths: tuple[str, ...],
) -> None:
    """Restore a backed-up root (or the PATHs of it) into a folder: exit 0 when everything
    is restored and verified, 1 when something failed or was kept (listed), 2 bad usage.

    Works on a new machine: only the credentials (or the embedded emulator) are needed.
    A local file that differs is never replaced without --overwrite; an identical one is
    kept without downloading; a killed restore continues where it stopped.

    \b
    Example:
      syncagent restore --root Documents --to ~/Documents-restored
      syncagent restore --root /backup/docs reports/2024 --to /tmp/r --dry-run
      syncagent restore --root Documents --at 2026-12-01T08:00:00Z --to /tmp/r
      syncagent restore --root Documents notes.txt --version 3 --to /tmp/r
    """
    from syncagent.app import open_client
    from syncagent.cli.common import stopped_by_signals
    from syncagent.restore import plan_restore
    from syncagent.restore.execute import Restorer
    from syncagent.restore.history import as_of, parse_time, with_version
    from syncagent.restore.plan import summary
    from syncagent.restore.source import load

    config = _config(config_path)
    problems = []
    if version is not None and len(paths) != 1:
        problems.append("--version: give exactly one PATH")
    if version is not None and at_time is not None:
        problems.append("--version and --at: give one of them")
    if problems:
        fail(ConfigError(problems))
    try:
        at = None if at_time is None else parse_time(at_time)
    except SyncAgentError as err:
        fail(err)
    tty = sys.stderr.isatty() and verbosity >= 0
    live: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if tty:  # the same live block as sync, log lines printed above it (rich loads only here)
        from syncagent.cli.progress import LiveProgress, console_handler, stderr_console

        console = stderr_console()
        setup_logging(config, verbosity, console_handler(console))
        live = LiveProgress(console, verb="downloading")
    else:
        setup_logging(config, verbosity)
    config = with_bwlimit(config, "download", bwlimit)
    dest = dest.expanduser()
    if not dry_run:
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(ConfigError([f"--to: cannot make {dest}: {exc.strerror}"]))
    if dest.exists() and not dest.is_dir():
        fail(ConfigError([f"--to: {dest} is not a folder"]))
    dest = dest.resolve()
    stop = threading.Event()
    try:
        with open_client(config, _say) as client:
            source = load(client, choose_root(config, root_name, client))
            _say(_origin(source))
            entries = source.entries
            if at is not None:
                entries = as_of(entries, source.versions, at)
            elif version is not None:
                entries = with_version(entries, source.versions, paths[0].strip("/"), version)
            planned = plan_restore(
                entries,
                dest,
                paths,
                overwrite=overwrite,
                symlinks_outside=symlinks_outside,
            )
            if planned.selection.unmatched:
                raise ConfigError(
                    [
                        f"PATH: {p} is not in the backup of {source.remote_root}"
                        for p in planned.selection.unmatched
                    ]
                )
            if dry_run:
                for a in planned.actions:
                    why = f": {a.reason}" if a.reason else ""
                    extra = " (replacing)" if a.replace else ""
                    click.echo(f"{a.outcome}{extra} {shown(a.entry.path)}{why}")
                counts = summary(planned.actions)
                click.echo(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing")
                return

            def on_stop() -> None:
                stop.set()
                client.cancel()

            with live as progress, stopped_by_signals(on_stop) as stopped:
                restorer = Restorer(
                    client,
                    dest,
                    workers=workers or max(8, config.workers),
                    progress=progress,
                    stop=stop,
                )
                report = restorer.run(planned.actions)
    except SyncAgentError as err:
        fail(err)
    for path, reason in report.unavailable:
        click.echo(f"not backed up {shown(path)}: {reason}", err=True)
    for path, reason in report.conflicts:
        click.echo(f"kept {shown(path)}: {reason}", err=True)
    for path, reason in report.refused:
        click.echo(f"refused {shown(path)}: {reason}", err=True)
    for path, reason in report.failed:
        click.echo(f"FAILED {shown(path)}: {reason}", err=True)
    if stopped:
        name = signal.Signals(stopped[0]).name
        click.echo(
            f"interrupted by {name}: run the same restore again to continue "
            "(partial downloads resume)",
            err=True,
        )
    # the summary is the last line of stdout, as for sync
    click.echo(
        f"{report.downloaded} restored ({mb(report.bytes_restored)}, "
        f"{mb(report.bytes_fetched)} downloaded), {report.folders} folders, "
        f"{report.links} links, {report.empty} empty files, {report.same} already there; "
        f"{len(report.conflicts)} kept, {len(report.refused)} refused, "
        f"{len(report.failed)} failed"
    )
    if stopped:
        sys.exit(128 + stopped[0])
    sys.exit(0 if report.ok else 1)
