"""Root watchers on real folders: inotify, the fallback to polling at the watch limit, and
the rescan after an inotify queue overflow."""

from __future__ import annotations

import errno
import logging
import time
from pathlib import Path

import pytest
from watchdog.observers import Observer

from syncagent.config import RootConfig
from syncagent.watcher import INOTIFY_HINT, Dirty, RootWatcher

pytestmark = pytest.mark.timeout(60)


def _marked(dirty: Dirty, root: Path, within: float) -> bool:
    return root in _taken(dirty, within, {root})


def _taken(dirty: Dirty, within: float, wanted: set[Path]) -> set[Path]:
    """The roots marked dirty within ``within`` seconds (stops early once all are seen)."""
    seen: set[Path] = set()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not wanted <= seen:
        seen.update(dirty.take(0.0, 0.0))
        time.sleep(0.05)
    return seen


class _AtTheWatchLimit(Observer):  # type: ignore[misc,valid-type]
    """The platform observer when the kernel refuses another watch, as inotify_add_watch
    does with ENOSPC once fs.inotify.max_user_watches is used up."""

    def schedule(self, *args: object, **kwargs: object) -> object:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_inotify_root_sees_a_new_file(tmp_path: Path) -> None:
    dirty = Dirty()
    watcher = RootWatcher(RootConfig(tmp_path, "/r"), dirty)
    watcher.start()
    try:
        assert watcher.mode == "inotify"
        (tmp_path / "new.txt").write_text("x")
        assert _marked(dirty, tmp_path, 5)
    finally:
        watcher.stop()


def test_watch_limit_falls_back_to_polling_and_names_the_sysctl(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dirty = Dirty()
    root = RootConfig(tmp_path, "/r", poll_interval=0.2)
    watcher = RootWatcher(root, dirty, native=_AtTheWatchLimit)
    with caplog.at_level(logging.WARNING, logger="syncagent"):
        watcher.start()
    try:
        assert watcher.mode == "poll"
        assert "fs.inotify.max_user_watches" in caplog.text
        assert INOTIFY_HINT in caplog.text
        time.sleep(0.5)  # the poller's first snapshot
        assert not _marked(dirty, tmp_path, 0.1)
        (tmp_path / "polled.txt").write_text("seen by polling")
        assert _marked(dirty, tmp_path, 3)  # within a few poll intervals
    finally:
        watcher.stop()


def test_other_errors_from_the_platform_observer_are_not_hidden(tmp_path: Path) -> None:
    class _Broken(Observer):  # type: ignore[misc,valid-type]
        def schedule(self, *args: object, **kwargs: object) -> object:
            raise OSError(errno.EACCES, "permission denied")

    watcher = RootWatcher(RootConfig(tmp_path, "/r"), Dirty(), native=_Broken)
    with pytest.raises(OSError, match="permission denied"):
        watcher.start()


def test_an_inotify_queue_overflow_marks_every_inotify_root_for_a_rescan(
    tmp_path: Path,
) -> None:
    """watchdog reports an overflow only in its log (it rebuilds its own watches); the
    record below is the one it writes."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    dirty = Dirty()
    watchers = [RootWatcher(RootConfig(p, "/r"), dirty) for p in (a, b)]
    for w in watchers:
        w.start()
    try:
        assert not _marked(dirty, a, 0.2)
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        assert _taken(dirty, 1, {a, b}) == {a, b}
    finally:
        for w in watchers:
            w.stop()
    logging.getLogger("watchdog.observers.inotify_c").warning(
        "Inotify queue overflowed; filesystem events were lost"
    )
    assert not _marked(dirty, a, 0.2)  # a stopped watcher is no longer told


def test_unrelated_watchdog_warnings_do_not_trigger_rescans(tmp_path: Path) -> None:
    dirty = Dirty()
    watcher = RootWatcher(RootConfig(tmp_path, "/r"), dirty)
    watcher.start()
    try:
        logging.getLogger("watchdog.observers.inotify_c").warning("something else")
        assert not _marked(dirty, tmp_path, 0.3)
    finally:
        watcher.stop()


def test_a_root_that_goes_away_and_comes_back_is_noticed_and_watched_again(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    dirty = Dirty()
    watcher = RootWatcher(RootConfig(root, "/r"), dirty)
    watcher.start()
    try:
        watcher.check()
        assert not _marked(dirty, root, 0.2)  # nothing changed
        root.rename(tmp_path / "away")  # inotify reports nothing for the watched folder
        watcher.check()
        assert _marked(dirty, root, 0.5)
        (tmp_path / "away").rename(root)  # back (a remount looks the same: a new folder)
        watcher.check()
        assert _marked(dirty, root, 0.5)
        (root / "new.txt").write_text("x")
        assert _marked(dirty, root, 5)  # events from the folder now there
    finally:
        watcher.stop()


def test_a_root_missing_at_start_is_watched_once_it_appears(tmp_path: Path) -> None:
    root = tmp_path / "not-yet"
    dirty = Dirty()
    watcher = RootWatcher(RootConfig(root, "/r"), dirty)
    watcher.start()  # no error: a NAS share may be mounted later
    try:
        root.mkdir()
        watcher.check()
        assert _marked(dirty, root, 0.5)
        (root / "new.txt").write_text("x")
        assert _marked(dirty, root, 5)
    finally:
        watcher.stop()
