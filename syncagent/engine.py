"""One backup pass: scan every root, plan against the ledger, upload with a pool of workers.

The composition of scanner → planner → workers → ledger for ``syncagent sync`` and for each
pass of the watch agent. Every state change is committed to the ledger before it is counted.
A worker re-checks a file before trusting it: a file that changed since the scan, or while it
was hashed or sent, is re-queued (a few times) and never recorded as done. It reads the file
through one descriptor (:mod:`syncagent.localfile`): no link is followed, a FIFO never blocks.
A done row is marked pending just before its new content is sent, so that a crash after
123pan's yes never leaves it calling the old content done; a name held on 123pan by the other
kind (file/folder) is cleared by :mod:`syncagent.clash`.
An upload 123pan accepted is recorded ``uploaded`` at once (fileID, MD5); uploads are verified
in batches of 100 (one ``infos`` call: stored size and etag against the local file) and only
then recorded done. What the ledger's rows are worth against the cloud (account binding, a
trashed remote folder, adoption of files already there) is decided by
:mod:`syncagent.reconcile`. A failing file gets a next-attempt time with backoff while the
rest proceed; a fatal error (credentials, quota) stops the pass.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from syncagent import decisions, leftover
from syncagent.binding import Account
from syncagent.config import RootConfig, SyncConfig
from syncagent.errors import (
    ConfigError,
    FileChangedError,
    Interrupted,
    LedgerError,
    LocalFileError,
    RemoteConflictError,
    RemoteError,
    StateError,
    TransportError,
    UnsupportedFileError,
)
from syncagent.gone import unreadable_folders, vacated, vanished
from syncagent.guard import Hold, assess
from syncagent.ignore import IgnoreRules
from syncagent.ledger import Ledger, repo, unchanged
from syncagent.localfile import LocalFile, open_below
from syncagent.model import FileState, FolderMove, LedgerFacts, LocalEntry, Move, Skip, Upload
from syncagent.moves import RemoteMover, find_dir
from syncagent.planner import EMPTY_FILE, MAX_FILE_SIZE, Plan, plan, too_large
from syncagent.progress import LARGE_FILE, NoProgress, Progress
from syncagent.reconcile import Reconciler
from syncagent.remote_names import NameRefused, remote_path
from syncagent.renames import find_moves
from syncagent.replaced import Replacements, replacements
from syncagent.scanner import ScanJob, default_helpers, root_problem, sqlite_file
from syncagent.walk import not_regular

if TYPE_CHECKING:  # the client (and requests) load only when a pass has something to send
    from syncagent.pan123 import Pan123Client, UploadResult

__all__ = ["PassReport", "Progress", "SyncEngine", "retry_delay"]

log = logging.getLogger("syncagent")

CHANGE_RETRIES = 3  # re-checks of a file that keeps changing, within one pass
VERIFY_BATCH = 100  # uploads verified per infos call (its documented maximum)
MAX_BACKOFF = 3600.0
CHANGING_PROMPT_RETRIES = 5  # passes that retry a still-changing file at once, then back off
FUTURE_SLACK = 2.0  # seconds a file time may run ahead of this clock before it is worth a word


@dataclass
class PassReport:
    uploaded: int = 0
    bytes_sent: int = 0
    unchanged: int = 0
    waiting: int = 0
    hashed: int = 0
    adopted: int = 0  # already on 123pan with the same size and MD5: recorded, not sent
    vanished: int = 0
    moved: int = 0
    trashed: int = 0  # mirror mode
    kept_deleted: int = 0  # mirror mode, versions on: deleted files kept as versions
    deleted_local: int = 0  # move mode
    refused: list[str] = field(default_factory=list)  # deletions refused by the guards
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    fatal: str | None = None
    fatal_error: RemoteError | None = None  # what made it fatal (refused credentials...)
    error: str | None = None  # the pass itself failed (123pan unreachable): tried again later
    unreachable: str | None = None  # an upload, or the pass, could not reach 123pan (why)
    not_read: list[str] = field(default_factory=list)  # roots left out: why (gone, bad rules)
    plans: list[tuple[RootConfig, Plan]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # the ledger was re-checked, and why
    held: dict[str, Hold | None] = field(default_factory=dict)  # root -> the guard's verdict

    @property
    def ok(self) -> bool:
        return not self.failed and self.fatal is None and self.error is None and not self.not_read


def retry_delay(attempts: int, *, changing: bool = False) -> float:
    """Seconds until a failed file is tried again: 30 s, doubling, at most an hour.

    A file that was still being written (``changing``) is not at fault: its first few
    retries are due at once (the watcher wakes the agent when it settles), and only one that
    never holds still, such as a log always appended to, backs off like any failure.
    """
    if changing:
        if attempts <= CHANGING_PROMPT_RETRIES:
            return 0.0
        attempts -= CHANGING_PROMPT_RETRIES
    return min(MAX_BACKOFF, 30.0 * 2.0 ** (attempts - 1))


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What must not change while a file is read for it to count as holding still."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino)


def _entry(rel_path: str, st: os.stat_result) -> LocalEntry:
    return LocalEntry(rel_path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino)


def _has_copy(upload: Upload, facts: Mapping[str, LedgerFacts]) -> bool:
    """Whether an upload would replace a copy 123pan holds (the guard holds those)."""
    row = facts.get(upload.entry.rel_path)
    return row is not None and row.remote_id is not None


def _drop_refused(
    refused: list[Skip], planned: Plan, folder_moves: list[FolderMove], moves: list[Move]
) -> tuple[list[FolderMove], list[Move]]:
    """Take paths refused for a file/folder name clash out of the plan, as skips."""
    entries = {u.entry.rel_path: u.entry for u in planned.uploads}
    entries.update((m.entry.rel_path, m.entry) for m in moves)
    entries.update((m.entry.rel_path, m.entry) for fm in folder_moves for m in fm.files)
    out = {s.rel_path for s in refused}
    planned.skips += [Skip(s.rel_path, s.reason, entries.get(s.rel_path)) for s in refused]
    planned.uploads = [u for u in planned.uploads if u.entry.rel_path not in out]
    # A folder move with a refused file becomes file moves (the rest still move).
    kept = [fm for fm in folder_moves if not any(m.entry.rel_path in out for m in fm.files)]
    loose = [m for fm in folder_moves if fm not in kept for m in fm.files]
    return kept, [m for m in [*moves, *loose] if m.entry.rel_path not in out]


@dataclass(frozen=True)
class _Sent:
    """An upload done but not yet verified."""

    root_id: int
    entry: LocalEntry
    remote_rel: str
    result: UploadResult
    path: Path
    delete_local: bool = False  # move mode: remove the local file once verified


class _BytesSent:
    """The uploader's byte callback for one file, turned into Progress calls: bytes as they
    go (a resumed, retried or restarted upload never counts a byte twice or past the file's
    size), and a large file's own progress while it is in flight."""

    def __init__(self, progress: Progress, rel: str, size: int) -> None:
        self._progress = progress
        self._rel = rel
        self._size = size
        self._sent = 0
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        with self._lock:  # slices are sent by several threads
            done = min(done, self._size)
            more, self._sent = max(0, done - self._sent), max(done, self._sent)
        if more:
            self._progress.advance(more)
        if self._size >= LARGE_FILE:
            self._progress.sending(self._rel, done, self._size)

    def finish(self) -> None:
        self(self._size, self._size)


class SyncEngine:
    """Runs passes for a configuration.

    :param client: the 123pan client (real account or emulator).
    :param account: where it backs up, which the ledger's rows are bound to (None: read
        from the client).
    :param sleep: injectable wait (stability window); by default a wait that :meth:`stop`
        cuts short.
    """

    def __init__(
        self,
        config: SyncConfig,
        ledger: Ledger,
        client: Pan123Client | Callable[[], Pan123Client],
        *,
        progress: Progress | None = None,
        account: Account | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self.account = account
        self.ledger = ledger
        self._client = client
        self.progress: Progress = progress or NoProgress()
        self._sleep = sleep
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent: list[_Sent] = []  # uploaded, waiting for a batched verification
        self._told_future: set[Path] = set()  # files whose future mtime was logged
        self._prior: dict[tuple[int, str], LedgerFacts] = {}  # remote copies to keep aside
        self._replacing: set[tuple[int, str]] = set()  # done rows whose new content is sent
        self._clash_lock = threading.Lock()  # one worker at a time clears a name clash

    def stop(self, *, cancel_client: bool = True) -> None:
        """Start no new upload; small ones in flight finish, chunked ones stop after their
        slices in flight and stay resumable. ``cancel_client=False`` (a pause: the client
        serves later passes): every upload in flight finishes, chunked ones too."""
        # No lock here: this runs in a signal handler, possibly while this very thread holds
        # self._lock; reading one attribute and setting events is safe without it.
        self._stop.set()
        client = self._client
        if cancel_client and not callable(client):
            client.cancel()

    @property
    def client(self) -> Pan123Client:
        """The client, made on first use (a pass with nothing to send never needs it)."""
        if callable(self._client):
            with self._lock:
                if callable(self._client):
                    self._client = self._client()
        assert not callable(self._client)
        return self._client

    def run_once(
        self,
        dry_run: bool = False,
        retry_failed: bool = True,
        scans: Mapping[Path, ScanJob] | None = None,
        check_remote: bool = False,
    ) -> PassReport:
        """Scan, plan and (unless ``dry_run``) upload every root once.

        :param retry_failed: try failed files now, whatever their next-attempt time (an
            explicit ``sync``); the watch agent passes False so failures back off.
        :param scans: scans already started, by root path (``sync`` starts them before
            the ledger's libraries load, so the walk overlaps the import).
        :param check_remote: also check each root's remote folder and a sample of its done
            files (``remote_check.files``) against 123pan (the agent's periodic check).
        """
        report = PassReport()
        pass_id = 0 if dry_run else repo.start_pass(self.ledger)
        result = None
        try:
            self._run(report, pass_id, dry_run, retry_failed, scans or {}, check_remote)
        except Interrupted as exc:
            log.info("pass stopped by a shutdown (%s); it resumes on the next start", exc)
            result = "interrupted"
        except RemoteError as exc:  # from a call this thread makes: the remote root, moves
            if exc.fatal:
                report.fatal = report.fatal or exc.explained
                report.fatal_error = report.fatal_error or exc
            else:
                report.error = str(exc)
                if isinstance(exc, TransportError):  # out of reach, not refused: /healthz waits
                    report.unreachable = report.unreachable or str(exc)
                log.warning("pass failed: %s; it is tried again later", exc)
        if dry_run:
            return report
        if result is None and self._stop.is_set() and report.fatal is None:
            result = "interrupted"  # stopped (a signal): files may be left unsent
        repo.finish_pass(
            self.ledger,
            pass_id,
            uploaded=report.uploaded,
            failed=len(report.failed),
            bytes_sent=report.bytes_sent,
            result=result or ("fatal" if report.fatal else "ok" if report.ok else "failed"),
        )
        return report

    def _run(
        self,
        report: PassReport,
        pass_id: int,
        dry_run: bool,
        retry_failed: bool,
        scans: Mapping[Path, ScanJob],
        check_remote: bool = False,
    ) -> None:
        checks = Reconciler(
            self.ledger,
            lambda: self.client,
            self.account,
            dry_run=dry_run,
            workers=self.config.workers,
            stopped=self._stop.is_set,
        )
        report.notices = checks.notices  # the same list: filled as the roots are checked
        deletions: list[
            tuple[RootConfig, int, list[tuple[str, int]], int, Mapping[str, LedgerFacts]]
        ] = []
        work: list[tuple[RootConfig, int, int, Upload]] = []
        not_read = {} if dry_run else repo.root_problems(self.ledger)
        holds, approved = ({}, {}) if dry_run else repo.guard_state(self.ledger)
        holds = {**approved, **holds}  # an approval is used up like a hold is cleared
        touched: list[tuple[RootConfig, int, bool]] = []  # (root, id, changed): for catalogs
        self._prior.clear()
        self._replacing.clear()
        for root in self.config.roots:
            if dry_run:  # reads only: a root the ledger does not know has no rows (id 0)
                root_id, known_remote = repo.find_root(self.ledger, str(root.local)) or (0, None)
            else:
                root_id, known_remote = repo.ensure_root(
                    self.ledger, str(root.local), root.remote, root.mode
                )
            rechecked = False
            if root_id:  # the ledger against the cloud (a dry run only reads and says)
                known_remote, rechecked = checks.before_scan(
                    root,
                    root_id,
                    known_remote,
                    sample=self.config.remote_check_files if check_remote else 0,
                )
            rows = repo.count_files(self.ledger, root_id)
            job = self._scan(root, rows, dry_run, scans)
            problem = job if isinstance(job, str) else None
            if not dry_run and problem != not_read.get(root_id):
                repo.set_root_problem(self.ledger, root_id, problem)  # for status
            if isinstance(job, str):  # not read: the pass is not a success; the others go on
                log.warning("%s", job)
                report.not_read.append(job)
                continue
            try:
                found = job.result()
                if found.matched is None and not rechecked and unchanged.applies(self.ledger):
                    found.matched = unchanged.unchanged_rows(  # (PostgreSQL: one query)
                        self.ledger, root_id, found.files, found.raw_skips
                    )
                if found.matched == rows and not rechecked:  # all as recorded, nothing gone
                    report.unchanged += rows
                    report.plans.append((root, Plan(unchanged=rows)))
                    decisions.log_plan(root, report.plans[-1][1])
                    touched.append((root, root_id, False))
                    self._guarded(root, root_id, None, holds, report, dry_run)
                    continue
                found.files  # noqa: B018 - fetch everything from the helpers now
            finally:
                job.close()
            if known_remote is not None and not dry_run and found.entries:
                known_remote = checks.root_alive(root, root_id, known_remote)
            facts = repo.load_facts(self.ledger, root_id)
            if dry_run and rechecked:  # what the pass would do once the rows are re-checked
                facts = {
                    rel: f._replace(state="pending") if f.state == "done" else f
                    for rel, f in facts.items()
                }
            planned = plan(
                found.entries,
                found.skips,
                facts,
                names=self.config.names,
                now=float("inf") if retry_failed else time.time(),
            )
            present = {e.rel_path for e in found.entries} | {s.rel_path for s in found.skips}
            folder_moves, moves, planned.uploads = find_moves(planned.uploads, facts, present)
            replacing = replacements(
                [
                    *((u.entry.rel_path, u.remote_rel) for u in planned.uploads),
                    *((m.entry.rel_path, m.new_remote) for fm in folder_moves for m in fm.files),
                    *((m.entry.rel_path, m.new_remote) for m in moves),
                ],
                facts,
                present,
            )
            if replacing.skips:
                folder_moves, moves = _drop_refused(replacing.skips, planned, folder_moves, moves)
            planned.moves = [*(m for fm in folder_moves for m in fm.files), *moves]
            unreadable = unreadable_folders(found.skips)
            hold = None
            if root_id not in approved:
                hold = assess(
                    root.local,
                    mirror=root.mode == "mirror",
                    facts=facts,
                    uploads=planned.uploads,
                    deletes_locally=root.mode == "move",
                    handled={m.old_rel for m in planned.moves} | replacing.rows,
                    present=present,
                    unreadable=unreadable,
                    found=len(found.entries),
                    settings=self.config.guard_for(root),
                    stopped=self._stop.is_set,
                )
            self._guarded(root, root_id, hold, holds, report, dry_run)
            if hold is not None:  # held: only new files go; nothing is replaced, moved, trashed
                planned.uploads = [u for u in planned.uploads if not _has_copy(u, facts)]
                folder_moves, moves, planned.moves, replacing = [], [], [], Replacements()
            report.unchanged += planned.unchanged
            report.waiting += planned.waiting
            report.plans.append((root, planned))
            decisions.log_plan(root, planned, hold is not None, facts)  # -v: each file, and why
            if dry_run:
                continue
            touched.append((root, root_id, True))
            for skip in planned.skips:
                repo.record_skip(
                    self.ledger, root_id, skip.rel_path, skip.reason, skip.entry, pass_id
                )
                report.skipped.append((str(root.local / skip.rel_path), skip.reason))
            handled: set[str] = set()
            if planned.uploads or folder_moves or moves or replacing:
                remote_id = known_remote
                if remote_id is None:  # resolved afresh: adopt what 123pan already holds
                    remote_id, adoption = checks.resolve(root, root_id, planned.uploads, pass_id)
                    planned.uploads = adoption.rest
                    report.adopted += len(adoption.adopted)
                    report.hashed += adoption.hashed
                mover = RemoteMover(
                    self.client, self.ledger, root_id, remote_id, pass_id, root.local
                )
                if replacing:  # with versions, the retired copies are kept (set_aside.py)
                    retire = (
                        self._displaced(remote_id, root_id, replacing, facts)
                        if root.versions
                        else replacing
                    )
                    if retire is not None:
                        mover.replace(retire)
                for fm in folder_moves:
                    planned.uploads += mover.folder(fm)
                planned.uploads += mover.files(moves)
                handled = mover.moved_from | replacing.rows
                report.moved += mover.moved
                report.hashed += mover.hashed
                work.extend((root, root_id, remote_id, u) for u in planned.uploads)
                self._replacing.update(
                    (root_id, u.entry.rel_path)
                    for u in planned.uploads
                    if (f := facts.get(u.entry.rel_path)) is not None
                    and f.state == FileState.DONE
                    and f.remote_id
                )
                if root.versions:  # the remote copies these uploads would replace: a done
                    # file's, or (archive, move) one deleted locally whose name a new file takes
                    self._prior.update(
                        ((root_id, u.entry.rel_path), f)
                        for u in planned.uploads
                        if (f := facts.get(u.entry.rel_path)) is not None
                        and f.state in (FileState.DONE, FileState.GONE)
                        and f.remote_id
                        and f.md5
                        and f.remote_name == u.remote_rel
                    )
            # what this root means to send, written before a byte goes (status after a kill)
            leftover.record_work(self.ledger, root_id, pass_id, planned.uploads, facts)
            if root.versions and known_remote is not None:
                self._put_back_orphans(root_id, known_remote, facts, planned.uploads, handled)
            if hold is not None:
                continue
            lost = vanished(facts, present, unreadable, handled, mirror=root.mode == "mirror")
            if lost.unknown:
                log.warning(
                    "%s: %d files below folders that cannot be read are left as they are",
                    root.local,
                    lost.unknown,
                )
            repo.mark_gone(self.ledger, root_id, lost.gone, pass_id)
            repo.forget_many(self.ledger, root_id, lost.forget)
            if root.mode == "mirror" and "." in unreadable and lost.unknown:
                self._refuse(f"{root.local} is missing, empty or not mounted", report)
            elif root.mode == "mirror":
                deletions.append((root, root_id, lost.trash, len(found.entries), facts))
        if dry_run:
            return
        self.progress.start(len(work), sum(w[3].entry.size for w in work))
        with ThreadPoolExecutor(self.config.workers, thread_name_prefix="upload") as pool:
            for future in [pool.submit(self._execute, *w, report, pass_id) for w in work]:
                future.result()
        with self._lock:
            rest, self._sent = self._sent, []
        self._verify(rest, report, pass_id)
        for root, root_id, gone, scanned, known in deletions:
            if not self._stop.is_set():
                self._mirror_deletes(root, root_id, gone, scanned, report, known)
        if not self._stop.is_set() and report.fatal is None:
            from syncagent.versions import prune, prune_due

            due = prune_due(self.ledger, ((r, i) for r, i, c in touched if not c), time.time())
            for n, (root, root_id, changed) in enumerate(touched):
                # keep_days: also in a pass that changed nothing, once a version's time came
                pruned = (changed or root_id in due) and prune(
                    lambda: self.client, self.ledger, root, root_id
                )
                if pruned and not changed:
                    touched[n] = (root, root_id, True)  # its catalog lists fewer versions
        if not self._stop.is_set() and report.fatal is None:
            from syncagent.catalog.keeper import CatalogKeeper  # loaded on the pass's end

            CatalogKeeper(self.config, self.ledger, lambda: self.client).after_pass(touched)

    def _guarded(
        self,
        root: RootConfig,
        root_id: int,
        hold: Hold | None,
        holds: Mapping[int, str],
        report: PassReport,
        dry_run: bool,
    ) -> None:
        """Report the guard's verdict on a root, and record it (for status) when it changed."""
        report.held[str(root.local)] = hold
        if hold is not None:
            log.warning(
                "%s: pass HELD by the mass-change guard: %s (%d changed, %d deleted, e.g. %s); "
                "nothing is replaced, moved or trashed until `syncagent approve %s`",
                root.local,
                hold.reason,
                hold.changed,
                hold.deleted,
                ", ".join(hold.examples),
                root.local,
            )
        if dry_run:
            return
        if hold is None and root_id in holds:
            log.info("%s: the mass-change guard's hold is cleared", root.local)
            repo.set_hold(self.ledger, root_id, None)
        elif hold is not None and holds.get(root_id) != hold.to_json():
            repo.set_hold(self.ledger, root_id, hold.to_json())

    def _scan(
        self,
        root: RootConfig,
        rows: int,
        dry_run: bool,
        scans: Mapping[Path, ScanJob],
    ) -> ScanJob | str:
        """The root's scan (started here unless ``sync`` started it), or why the root
        cannot be backed up (a pass that leaves a root out is not a success): its
        folder cannot be read (gone, unmounted, no permission), or its ``.syncignore`` is
        bad (edited while the agent runs; ``sync`` and ``run`` refuse a bad one at start)."""
        job = scans.get(root.local)
        problem = root_problem(root.local)
        if problem is None and job is None:
            try:
                rules = IgnoreRules.for_root(root.local, root.ignore, own=self.config.own_paths)
            except ConfigError as err:
                problem = f"{root.local} was not backed up: " + "; ".join(err.problems)
            else:
                job = ScanJob(
                    root.local,
                    rules,
                    helpers=default_helpers(),
                    ledger_file=None if dry_run else sqlite_file(self.ledger.url),
                    rows=rows,
                )
        if problem is None and job is not None:
            return job
        if job is not None:
            job.close()
        return problem or f"{root.local} was not scanned"

    def _delete_local(self, sent: _Sent, report: PassReport) -> None:
        """Move mode: remove the local file, unless it changed since it was uploaded."""
        try:
            st = os.stat(sent.path, follow_symlinks=False)
            if (st.st_size, st.st_mtime_ns, st.st_ino) != (
                sent.entry.size,
                sent.entry.mtime_ns,
                sent.entry.inode,
            ):
                log.info("%s changed after its upload; kept", sent.path)
                return
            os.unlink(sent.path)
        except OSError as exc:
            log.warning("cannot delete %s after its upload: %s", sent.path, exc.strerror)
            return
        with self._lock:
            report.deleted_local += 1

    def _mirror_deletes(
        self,
        root: RootConfig,
        root_id: int,
        gone: list[tuple[str, int]],
        scanned: int,
        report: PassReport,
        facts: Mapping[str, LedgerFacts],
    ) -> None:
        """Mirror mode: keep the remote copies of files deleted locally as versions (with
        versions off: put them in the recycle bin), unless that looks like an accident (a
        missing, empty or unmounted root, or more deletions than ``max_deletes``)."""
        if not gone:
            return
        refusal = None
        if scanned == 0:
            refusal = f"{root.local} is missing, empty or not mounted"
        elif len(gone) > root.max_deletes:
            refusal = (
                f"{len(gone)} files are gone from {root.local}, more than max_deletes "
                f"({root.max_deletes})"
            )
        if refusal is not None:
            self._refuse(refusal, report)
            return
        retired = [rel for rel, _ in gone]
        remote_root = repo.ensure_root(self.ledger, str(root.local), root.remote, root.mode)[1]
        whole = True
        if root.versions and remote_root is not None:
            from syncagent.set_aside import deleted

            kept, gone, whole = deleted(
                self.client, self.ledger, remote_root, root_id, gone, facts, self._stop.is_set
            )
            repo.forget_many(self.ledger, root_id, kept)
            with self._lock:
                report.kept_deleted += len(kept)
            if kept:
                log.info("mirror: %d files deleted locally were kept as versions", len(kept))
        if gone:
            self.client.trash([remote_id for _, remote_id in gone])
            repo.forget_many(self.ledger, root_id, [rel for rel, _ in gone])
            with self._lock:
                report.trashed += len(gone)
            log.info("mirror: %d files deleted locally went to the 123pan recycle bin", len(gone))
        if not whole:  # a copy not yet kept may sit in a vacated folder: the next pass
            return
        folders = vacated(retired, lambda f: os.path.lexists(root.local / f))
        if folders and remote_root is not None:
            self._trash_folders(remote_root, folders)

    def _trash_folders(self, remote_root: int, folders: list[str]) -> None:
        """Mirror mode: the remote folders of folders removed locally (emptied above)."""
        ids: list[int] = []
        for folder in folders:
            try:
                folder_id = find_dir(
                    self.client, remote_root, remote_path(folder, self.config.names)
                )
            except NameRefused:
                continue
            if folder_id is not None:
                ids.append(folder_id)
                self.client.dirs.flush(remote_root, remote_path(folder, self.config.names))
        if ids:
            self.client.trash(ids)
            log.info("mirror: %d folders removed locally went to the 123pan recycle bin", len(ids))

    def _refuse(self, refusal: str, report: PassReport) -> None:
        msg = f"mirror: nothing trashed on 123pan: {refusal}"
        log.warning(msg)
        with self._lock:
            report.refused.append(msg)

    def _execute(
        self,
        root: RootConfig,
        root_id: int,
        remote_id: int,
        action: Upload,
        report: PassReport,
        pass_id: int,
    ) -> None:
        if self._stop.is_set():
            return
        rel = action.entry.rel_path
        path = root.local / rel
        entry = action.entry
        md5: str | None = None
        sending = _BytesSent(self.progress, rel, entry.size)  # one count, whatever the tries
        try:
            for attempt in range(1, CHANGE_RETRIES + 1):
                entry, md5, local = self._settle(root.local, action, report)
                with local:
                    if action.recorded_md5 is not None and md5 == action.recorded_md5:
                        # only its ctime moved (a chmod, say): nothing to send
                        repo.record_stat(self.ledger, root_id, entry, pass_id)
                        with self._lock:
                            report.unchanged += 1
                        self.progress.file_done(rel, True)
                        return
                    if self._stop.is_set():  # no upload starts after a stop
                        raise Interrupted("stopping")
                    if (prior := self._prior.pop((root_id, rel), None)) is not None:
                        self._keep_previous(remote_id, root_id, rel, action.remote_rel, prior)
                    if (root_id, rel) in self._replacing:  # not done from here on (a crash
                        self._replacing.discard((root_id, rel))  # may follow 123pan's yes)
                        repo.mark_sending(self.ledger, root_id, rel)
                    try:
                        result = self._send(root_id, remote_id, action, path, md5, local, sending)
                        sending.finish()  # all of it counts (an instant upload sends none)
                        break
                    except FileChangedError:  # changed while it was sent: settle, send again
                        if attempt == CHANGE_RETRIES:
                            raise
                        log.info("%s changed while it was being uploaded; sending it again", path)
            log.info("uploaded %s (%s, %d bytes, %s)", path, action.why, entry.size, result.method)
            self._to_verify(
                _Sent(root_id, entry, action.remote_rel, result, path, root.mode == "move"),
                report,
                pass_id,
            )
        except Interrupted:
            log.info("%s: upload interrupted by the shutdown; it resumes next time", path)
        except FileNotFoundError:
            repo.forget(self.ledger, root_id, rel)
            with self._lock:
                report.vanished += 1
            log.info("%s was deleted before it could be uploaded", path)
        except UnsupportedFileError as exc:
            log.info("%s is not uploaded: %s", path, exc.message)
            repo.record_skip(self.ledger, root_id, rel, exc.message, entry, pass_id)
            with self._lock:
                report.skipped.append((str(path), exc.message))
        except (LedgerError, StateError):  # syncagent's own files failed, not the user's:
            self._stop.set()  # start no other upload; the message names the real culprit
            raise
        except (LocalFileError, OSError) as exc:
            reason = (
                exc.message
                if isinstance(exc, LocalFileError)
                else (f"cannot be read: {exc.strerror or exc}")
            )
            changing = isinstance(exc, FileChangedError)
            self._fail(
                root_id, entry, md5, reason, None, None, report, pass_id, path, changing=changing
            )
        except RemoteError as exc:
            self._fail(root_id, entry, md5, str(exc), exc.code, exc.trace_id, report, pass_id, path)
            if isinstance(exc, TransportError):  # not this file's fault: 123pan is out of reach
                report.unreachable = str(exc)
            if exc.fatal:
                with self._lock:
                    report.fatal = report.fatal or exc.explained
                    report.fatal_error = report.fatal_error or exc
                self._stop.set()

    def _send(
        self,
        root_id: int,
        remote_id: int,
        action: Upload,
        path: Path,
        md5: str,
        local: LocalFile,
        sending: _BytesSent | None = None,
    ) -> UploadResult:
        """Upload from the open descriptor. An entry of the other kind in the way on 123pan
        (a folder at the file's name, a file at one of its folders) is kept aside as a
        version (:mod:`syncagent.clash`) and the upload tried once more."""
        try:
            return self.client.upload(
                path, remote_id, action.remote_rel, md5=md5, verify=False, fd=local.fd,
                digest=local.digest,  # slice MD5s from the same read
                on_progress=sending,
            )  # fmt: skip
        except RemoteConflictError:
            from syncagent.clash import clear_way

            # One worker at a time: files below one clashing name fail together, and the
            # first clears the way for all (the others find nothing left, and try again).
            with self._clash_lock:
                clear_way(
                    self.client, self.ledger, remote_id, root_id, action.entry.rel_path,
                    action.remote_rel,
                )  # fmt: skip
        return self.client.upload(
            path, remote_id, action.remote_rel, md5=md5, verify=False, fd=local.fd,
            digest=local.digest,
            on_progress=sending,
        )  # fmt: skip

    def _put_back_orphans(
        self,
        root_id: int,
        remote_root: int,
        facts: Mapping[str, LedgerFacts],
        uploads: list[Upload],
        handled: set[str],
    ) -> None:
        """Versions: a copy kept aside by a pass that died before the upload, whose file this
        pass will not send (it cannot be read now), goes back to its path. Rows this pass
        moved or replaced (``handled``) name no copy at their path any more."""
        from syncagent.versions import load, orphans, put_back

        sending = {u.entry.rel_path for u in uploads} | handled
        current = {rel: f.remote_id for rel, f in facts.items() if rel not in sending}
        for kept in orphans(load(self.ledger, root_id), current):
            try:
                put_back(self.client, self.ledger, remote_root, kept)
            except RemoteError as exc:  # tried again by the next pass
                log.warning("%s: the previous copy could not be put back: %s", kept.path, exc)

    def _displaced(
        self,
        remote_root: int,
        root_id: int,
        replacing: Replacements,
        facts: Mapping[str, LedgerFacts],
    ) -> Replacements | None:
        """Versions: the copies displaced by entries of the other kind are kept (what is
        left to retire), or None when one could not be kept (nothing retired this pass)."""
        from syncagent.set_aside import displaced

        return displaced(self.client, self.ledger, remote_root, root_id, replacing, facts)

    def _keep_previous(
        self, remote_id: int, root_id: int, rel: str, remote_rel: str, prior: LedgerFacts
    ) -> None:
        """Versions: keep the remote copy the upload would replace (see syncagent.versions)."""
        from syncagent.versions import keep_aside

        assert prior.remote_id is not None and prior.md5 is not None
        keep_aside(
            self.client, self.ledger, remote_id, root_id, prior.remote_id, rel, remote_rel,
            prior.size, prior.md5, prior.mtime_ns,
        )  # fmt: skip

    def _to_verify(self, sent: _Sent, report: PassReport, pass_id: int) -> None:
        """Record an upload 123pan accepted (state ``uploaded``: a crash from here on
        costs a verification, not a second upload), queue it, verify a full batch now."""
        repo.record_uploaded(
            self.ledger,
            repo.Done(
                sent.root_id, sent.entry, sent.result.md5, sent.result.file_id, sent.remote_rel
            ),
            pass_id,
        )
        with self._lock:
            self._sent.append(sent)
            if len(self._sent) < VERIFY_BATCH:
                return
            batch, self._sent = self._sent, []
        self._verify(batch, report, pass_id)

    def _verify(self, batch: list[_Sent], report: PassReport, pass_id: int) -> None:
        """Check stored size and etag of a batch (one infos call per 100), then record each
        file done, or failed when 123pan holds something else."""
        if not batch:
            return
        try:
            found = {f.file_id: f for f in self.client.infos([s.result.file_id for s in batch])}
        except RemoteError as exc:
            for s in batch:
                self._fail(
                    s.root_id,
                    s.entry,
                    s.result.md5,
                    f"not verified: {exc}",
                    exc.code,
                    exc.trace_id,
                    report,
                    pass_id,
                    s.path,
                )
            if exc.fatal:
                with self._lock:
                    report.fatal = report.fatal or exc.explained
                    report.fatal_error = report.fatal_error or exc
                self._stop.set()
            return
        verified: list[_Sent] = []
        for s in batch:
            remote = found.get(s.result.file_id)
            if (
                remote is None
                or remote.trashed
                or (remote.size, remote.etag) != (s.entry.size, s.result.md5)
            ):
                held = "nothing" if remote is None else f"{remote.size} bytes, etag {remote.etag}"
                self._fail(
                    s.root_id,
                    s.entry,
                    s.result.md5,
                    f"verification failed: 123pan holds {held}",
                    None,
                    None,
                    report,
                    pass_id,
                    s.path,
                )
                continue
            verified.append(s)
        repo.record_done(
            self.ledger,
            [
                repo.Done(s.root_id, s.entry, s.result.md5, s.result.file_id, s.remote_rel)
                for s in verified
            ],
            pass_id,
        )
        for s in verified:
            if s.delete_local:
                self._delete_local(s, report)
            with self._lock:
                report.uploaded += 1
                report.bytes_sent += s.entry.size
            self.progress.file_done(s.entry.rel_path, True)  # its bytes counted as sent

    def _settle(
        self, root: Path, action: Upload, report: PassReport
    ) -> tuple[LocalEntry, str, LocalFile]:
        """Wait until the file holds still, open it once and hash it from that descriptor.

        Returns the file still open: the caller sends it from the same descriptor and closes
        it. The file must be, on that descriptor, the regular file that was waited for (same
        size, mtime, ctime, device and inode), on the device it was scanned on, and hold
        still while it is hashed. Another inode on that device is the path's new content (an
        atomic save): safe to read, since no folder on the way is a link. Its size is checked
        before a byte is read: an empty file or one over 10 GB is refused unread.
        """
        rel = action.entry.rel_path
        path = root / rel
        for _ in range(CHANGE_RETRIES):
            quiet = self._wait_quiet(path)
            local = open_below(root, rel)
            try:
                st = local.stat()
                if _identity(st) != _identity(quiet):
                    local.close()  # replaced or written since the wait: wait again
                    continue
                if st.st_dev != action.entry.dev:  # a mount appeared on its way
                    raise FileChangedError(
                        "the file is on another file system than when it was scanned; "
                        "it will be tried again",
                        str(path),
                    )
                if st.st_size == 0:
                    raise UnsupportedFileError(EMPTY_FILE, str(path))
                if st.st_size > MAX_FILE_SIZE:
                    raise UnsupportedFileError(too_large(st.st_size), str(path))
                entry = _entry(rel, st)
                scanned = action.entry
                same = _identity(st) == (
                    scanned.size,
                    scanned.mtime_ns,
                    scanned.ctime_ns,
                    scanned.dev,
                    scanned.inode,
                )
                md5 = action.md5 if same and action.md5 else None
                if md5 is None:
                    md5 = local.md5(self._stop.is_set, self.client.slice_hint(st.st_size))
                    with self._lock:
                        report.hashed += 1
                    if _identity(local.stat()) != _identity(st):
                        local.close()
                        continue
                return entry, md5, local
            except BaseException:
                local.close()
                raise
        raise FileChangedError("the file kept changing; it will be tried again", str(path))

    def _wait_quiet(self, path: Path) -> os.stat_result:
        """Stat the path (no link followed) until the file has held still for the quiet
        window (and is ``min_age`` old); its last stat.

        Quiet means no change to size, mtime, ctime or inode: ctime also moves on a rename
        over the file (an atomic save) and on truncate-and-rewrite. The wait is bounded and
        does not trust the file's times alone: a file whose times are ahead of this clock
        (another machine's clock, a bad ``touch``) counts as settled once it has been seen
        holding still for the window. Each wait ends early on a stop (``Interrupted``), and a
        file that keeps changing gives up after a few waits.
        """
        window = max(self.config.stability_seconds, self.config.min_age)
        last: tuple[int, int, int, int, int] | None = None
        since = 0.0
        for waits in range(CHANGE_RETRIES + 1):
            st = os.stat(path, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                if stat.S_ISDIR(st.st_mode):
                    raise FileNotFoundError(errno.ENOENT, "it is a folder now", str(path))
                raise UnsupportedFileError(not_regular(st.st_mode), str(path))
            now = time.monotonic()
            if _identity(st) != last:
                last, since = _identity(st), now
            age = time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9
            held = now - since
            if age >= window or held >= window:
                return st
            if age < -FUTURE_SLACK and path not in self._told_future:
                self._told_future.add(path)
                log.warning(
                    "%s has a modification time %.0f s in the future (a clock is wrong?); "
                    "it counts as settled once it has held still for %.0f s",
                    path,
                    -age,
                    window,
                )
            if waits < CHANGE_RETRIES:
                pause = min(window - age, window - held)
                log.info("%s: waiting %.1f s for it to hold still", path, pause)
                self._pause(pause)
        raise FileChangedError("the file kept changing; it will be tried again", str(path))

    def _pause(self, seconds: float) -> None:
        """Wait (for a file to settle); a stop cuts the wait short with ``Interrupted``."""
        if self._sleep is None:
            self._stop.wait(seconds)
        else:
            self._sleep(seconds)
        if self._stop.is_set():
            raise Interrupted("stopped while waiting for a file to settle")

    def _fail(
        self,
        root_id: int,
        entry: LocalEntry,
        md5: str | None,
        reason: str,
        code: int | None,
        trace_id: str | None,
        report: PassReport,
        pass_id: int,
        path: Path,
        *,
        changing: bool = False,
    ) -> None:
        """Record a failed attempt with its backoff (:func:`retry_delay`)."""
        attempts, delay = repo.record_failure(
            self.ledger,
            root_id,
            entry,
            reason,
            md5=md5,
            code=code,
            trace_id=trace_id,
            backoff=functools.partial(retry_delay, changing=changing),
            pass_id=pass_id,
        )
        with self._lock:
            report.failed.append((str(path), reason))
        self.progress.file_done(entry.rel_path, False)
        log.warning("%s failed: %s (attempt %d; next try in %.0f s)", path, reason, attempts, delay)
