"""The watch agent (``syncagent run``): a startup pass, then passes whenever a root settles.

Owns the agent's threads and its lifecycle: one lock per state dir (a second agent is told
which process holds it), a watcher per root, and a loop that runs a pass for a root once its
changes have been quiet for the stability window (a burst such as an unzip or a ``cp -r``
becomes one pass), plus a full rescan every ``rescan_interval`` (with jitter) for whatever
events missed, and every ``remote_check.interval`` a pass that also checks the cloud (a
trashed root folder, a sample of done files) so remote deletions are noticed. ``stop()``
(SIGTERM/SIGINT) lets in-flight uploads finish, starts no new one, and returns; an
interrupted chunked upload resumes from the ledger next time. ``syncagent pause`` (a file
in the state dir, see pause.py) holds every pass: a pass under way lets its uploads finish
and starts no other, changes are noted meanwhile, and a full pass follows the resume.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

from syncagent.activity import ActivityFile
from syncagent.config import SyncConfig
from syncagent.engine import Progress, SyncEngine, retry_delay
from syncagent.errors import LedgerUnavailableError, RemoteError
from syncagent.ledger import Ledger, repo
from syncagent.pause import Pause, PauseWatch, read_pause
from syncagent.statelock import StateLock
from syncagent.watcher import Dirty, RootWatcher

__all__ = ["Agent", "StateLock"]

log = logging.getLogger("syncagent")

# A root that never stops changing (files trickling in) still gets a pass this often; each
# file still waits out its own quiet window in the engine before it is uploaded.
MIN_SETTLE_WAIT = 5.0
APPROVAL_POLL = 2.0  # seconds between looks for `syncagent approve` while a root is held
MAX_PASS_RETRY = 600.0  # a pass that failed as a whole is tried again within 10 min
LEDGER_RETRY = 5.0  # a pass stopped by an unreachable ledger server: again in 5 s, 10 s...
MAX_LEDGER_RETRY = 60.0
PAUSE_POLL = 1.0  # seconds between looks for `syncagent pause` / `resume`


class Agent:
    """Runs passes for a configuration until stopped.

    :param make_engine: builds the engine for a subset of the roots.
    """

    def __init__(
        self,
        config: SyncConfig,
        ledger: Ledger,
        make_engine: Callable[[SyncConfig, Progress], SyncEngine],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self._make_engine = make_engine
        self._clock = clock
        self._stop = threading.Event()
        self._dirty = Dirty(clock)
        self._watchers = [RootWatcher(r, self._dirty, own=config.own_paths) for r in config.roots]
        self._current: SyncEngine | None = None
        self.activity = ActivityFile(config.state_dir)
        self.counters = {"passes": 0, "uploaded": 0, "bytes_uploaded": 0, "failed": 0}
        self.last_pass_at = 0.0
        self.running = False
        self._finished = False  # run() returned: healthy until then, starting included
        self._next_rescan = 0.0  # when the next full pass is due
        self._failed_passes = 0  # in a row, failed as a whole
        self._next_check = float("inf")  # when the next remote check is due
        self._failing_since: float | None = None  # wall time the current outage began
        self._last_error: str | None = None
        # the last pass of these roots failed as a whole though 123pan answered (it refused
        # to make the remote root...): /healthz is 503 at once, until a pass of them succeeds
        self._pass_failed: tuple[str, frozenset[Path]] | None = None
        self.fatal: str | None = None  # why it stopped by itself (credentials, quota)
        self.fatal_error: RemoteError | None = None
        self.held: dict[str, str] = {}  # root -> why the mass-change guard holds its passes
        self._approvals_checked = 0.0
        self._ledger_failures = 0  # passes in a row stopped by an unreachable ledger server
        self._pause = PauseWatch(config.state_dir, every=PAUSE_POLL, clock=clock)
        self.paused: Pause | None = None  # the pause that holds the passes now
        self._retry_failed = False  # the next full pass retries failed files (startup's)

    def stop(self) -> None:
        """Ask the agent to finish: no new upload starts; in-flight ones complete."""
        # Called from a signal handler: no lock (this thread may hold one); only events are set.
        self._stop.set()
        self._dirty.wake.set()
        current = self._current
        if current is not None:
            current.stop()

    def _pass(
        self, roots: list[Path] | None, retry_failed: bool, check_remote: bool = False
    ) -> None:
        """One pass; a pass that failed as a whole (123pan unreachable) brings the next
        full pass forward, with backoff. ``check_remote``: the periodic remote check too."""
        config = self.config
        if roots is not None:
            config = dataclasses.replace(
                config, roots=tuple(r for r in config.roots if r.local in roots)
            )
        self.activity.phase("scanning", roots=[str(r.local) for r in config.roots])
        engine = self._make_engine(config, self.activity)
        self._current = engine
        if self._stop.is_set():  # a stop that came before _current was set
            self._current = None
            return
        passing = threading.Event()
        pause_watch = threading.Thread(
            target=self._stop_on_pause, args=(engine, passing), name="pause-watch", daemon=True
        )
        pause_watch.start()
        try:
            report = engine.run_once(retry_failed=retry_failed, check_remote=check_remote)
        except LedgerUnavailableError as exc:  # the server is restarting or away: wait it out
            self._ledger_failures += 1
            delay = min(MAX_LEDGER_RETRY, LEDGER_RETRY * self._ledger_failures)
            log.warning("pass stopped: %s; a full pass runs again in %.0f s", exc, delay)
            self._next_rescan = min(self._next_rescan, self._clock() + delay)
            self.activity.phase("idle")
            return
        finally:
            self._current = None
            passing.set()
            pause_watch.join()
        self._ledger_failures = 0
        for root, hold in report.held.items():
            if hold is None:
                self.held.pop(root, None)
            else:
                self.held[root] = hold.reason
        self.counters["passes"] += 1
        self.counters["uploaded"] += report.uploaded
        self.counters["bytes_uploaded"] += report.bytes_sent
        self.counters["failed"] += len(report.failed)
        self.last_pass_at = time.time()
        self.activity.phase(
            "idle", last_pass_uploaded=report.uploaded, last_pass_failed=len(report.failed)
        )
        log.info(
            "pass done: %d uploaded, %d moved, %d unchanged, %d skipped, %d failed",
            report.uploaded,
            report.moved,
            report.unchanged,
            len(report.skipped),
            len(report.failed),
        )
        if report.fatal:
            log.error("stopping: %s", report.fatal)
            self.fatal = report.fatal
            self.fatal_error = report.fatal_error
            self._stop.set()
        self._note_failed_pass(report.error, report.unreachable, config)
        outage = report.error or report.unreachable
        if outage:
            if self._failing_since is None:
                self._failing_since = time.time()
            self._last_error = outage
            self._failed_passes += 1
            delay = min(MAX_PASS_RETRY, retry_delay(self._failed_passes))
            log.warning("the pass failed; a full pass runs again in %.0f s", delay)
            self._next_rescan = min(self._next_rescan, self._clock() + delay)
        elif report.uploaded or report.moved or not report.waiting:
            # 123pan answered, or nothing waits on it: the outage, if any, is over
            self._failed_passes = 0
            self._failing_since = self._last_error = None
        elif self._failing_since is not None:
            # every file still backs off, so this pass asked 123pan nothing: look again soon
            delay = min(MAX_PASS_RETRY, retry_delay(self._failed_passes))
            self._next_rescan = min(self._next_rescan, self._clock() + delay)

    def _stop_on_pause(self, engine: SyncEngine, passed: threading.Event) -> None:
        """While a pass runs: once a pause is asked for, the pass starts no other upload
        (those in flight finish; the client is kept for the passes after the resume)."""
        while not passed.wait(PAUSE_POLL):
            if read_pause(self.config.state_dir) is not None:
                engine.stop(cancel_client=False)
                self._pause.expire()  # the loop sees it at once, starts no other pass
                return

    def _held_by_pause(self) -> bool:
        """Whether a pause holds the passes now; says when one begins or ends. At its end a
        full pass is due at once: it catches up on whatever changed meanwhile, and on the
        pass a pause cut short."""
        pause = self._pause.current()
        if pause is not None and pause != self.paused:
            log.info("%s: no upload starts until then", pause.describe())
            self.activity.phase("paused", until=pause.until)
        elif pause is None and self.paused is not None:
            log.info("resumed: a full pass catches up on what changed meanwhile")
            self.activity.phase("idle")
            self._next_rescan = self._clock()
        self.paused = pause
        return pause is not None

    def _note_failed_pass(
        self, error: str | None, unreachable: str | None, config: SyncConfig
    ) -> None:
        """Remember a pass that failed as a whole while 123pan answered; forget it once a
        pass of the same roots gets through. (Out of reach is an outage instead, tolerated
        for ``monitoring.unhealthy_after``; a pass with some failed files is not a failed
        pass.)"""
        roots = frozenset(r.local for r in config.roots)
        if error and not unreachable:
            self._pass_failed = (error, roots)
        elif not error and self._pass_failed is not None and self._pass_failed[1] <= roots:
            self._pass_failed = None

    def snapshot(self) -> dict[str, object]:
        """Counters and health for /metrics and /healthz."""
        return {
            **self.counters,
            # healthy from the start (monitoring starts before run(): a 503 then would be a
            # false alarm) until it stops
            "healthy": not self._finished and not self._stop.is_set(),
            "fatal": self.fatal,
            "failing_since": self._failing_since,
            "last_error": self._last_error,
            "pass_failed": self._pass_failed[0] if self._pass_failed else None,
            "unhealthy_after": self.config.unhealthy_after,
            "missing_roots": [str(w.root.local) for w in self._watchers if w.missing],
            "held": dict(self.held),
            "phase": self.activity.current_phase,
            "ledger_down_since": self.ledger.outage.since,
            "ledger_error": self.ledger.outage.reason,
            "last_pass_at": self.last_pass_at,
        }

    def run(self) -> None:
        """Startup pass, then watch; returns after :meth:`stop`."""
        self.running = True
        # Watch first: a change made while the startup pass scans marks its root dirty and
        # gets its own pass, instead of waiting for the next full rescan.
        for w in self._watchers:
            w.start()
            log.info("watching %s (%s)", w.root.local, w.mode)
        self._next_rescan = self._rescan_time()
        check_every = self.config.remote_check_interval
        self._next_check = self._clock() + check_every if check_every else float("inf")
        try:
            with self.activity.running():  # status follows the passes; removed after
                if self._held_by_pause():  # the startup pass follows the resume
                    self._retry_failed = True
                else:
                    self._pass(None, retry_failed=True, check_remote=bool(check_every))
                while not self._stop.is_set():
                    self._dirty.wake.wait(timeout=0.2)
                    self._dirty.wake.clear()
                    if self._stop.is_set():
                        break
                    if self._held_by_pause():  # changes stay noted for after the resume
                        continue
                    for w in self._watchers:
                        w.check()  # the root itself gone, moved or mounted over
                    quiet = self.config.stability_seconds
                    ready = self._dirty.take(quiet, max(MIN_SETTLE_WAIT, 3 * quiet))
                    ready += [r for r in self._approved() if r not in ready]
                    if ready:
                        self._pass(ready, retry_failed=False)
                    check = self._clock() >= self._next_check
                    if check:
                        self._next_check = self._clock() + check_every
                    if check or self._clock() >= self._next_rescan:
                        if self._clock() >= self._next_rescan:
                            self._next_rescan = self._rescan_time()
                        retry, self._retry_failed = self._retry_failed, False
                        self._pass(None, retry_failed=retry, check_remote=check)
        finally:
            for w in self._watchers:
                w.stop()
            self.running = False
            self._finished = True

    def _approved(self) -> list[Path]:
        """Held roots that ``syncagent approve`` let go since (asked every few seconds,
        only while a root is held): their held pass runs now."""
        if not self.held or self._clock() - self._approvals_checked < APPROVAL_POLL:
            return []
        self._approvals_checked = self._clock()
        try:
            approved = set(repo.guard_state(self.ledger)[1].values())
        except LedgerUnavailableError:  # asked again in a few seconds
            return []
        return [r.local for r in self.config.roots if str(r.local) in approved]

    def _rescan_time(self) -> float:
        interval = self.config.rescan_interval
        return self._clock() + interval * random.uniform(0.9, 1.1)
