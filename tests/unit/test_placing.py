"""The batch placer of restored small files, on the real filesystem with the real syncfs: no
file is renamed into place before a sync that started after its bytes were written, every
file added is placed (or reported), and a rename that fails leaves the complete temporary
file for the next run."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from syncagent.restore.placing import Placer, syncfs


class Watched:
    """The real syncfs, noting at each call which targets are already in place."""

    def __init__(self, targets: list[Path]) -> None:
        self.targets = targets
        self.calls: list[tuple[float, set[Path]]] = []
        self.lock = threading.Lock()

    def __call__(self, folder: Path) -> bool:
        started = time.monotonic()
        present = {t for t in self.targets if t.exists()}
        done = syncfs(folder)
        with self.lock:
            self.calls.append((started, present))
        return done


def _write(tmp: Path, data: bytes) -> None:
    tmp.write_bytes(data)


def _note(results: dict[Path, OSError | None], target: Path) -> Callable[[OSError | None], None]:
    def done(error: OSError | None) -> None:
        results[target] = error

    return done


def test_syncfs_is_there_on_linux(tmp_path: Path) -> None:
    assert syncfs(tmp_path) is True


def test_every_file_is_renamed_only_after_a_sync_that_followed_its_write(tmp_path: Path) -> None:
    targets = [tmp_path / f"f{i:03d}.txt" for i in range(120)]
    watched = Watched(targets)
    results: dict[Path, OSError | None] = {}
    added_at: dict[Path, float] = {}
    placer = Placer(interval=0.05, sync=watched)
    for i, target in enumerate(targets):
        tmp = target.with_name(f".{target.name}.part")
        _write(tmp, f"content {i}\n".encode())
        added_at[target] = time.monotonic()
        placer.add(tmp, target, _note(results, target))
        if i % 10 == 0:
            time.sleep(0.02)  # let some batches go out while files keep coming
    placer.close()

    assert results == dict.fromkeys(targets)
    assert placer.batches >= 2  # files kept coming while batches were placed
    for i, target in enumerate(targets):
        assert target.read_bytes() == f"content {i}\n".encode()
        # the first sync that found the file in place began after the file was added
        # (its write), and a sync before that one found it absent: renamed after a sync
        first_seen = next(t for t, present in watched.calls if target in present)
        assert any(added_at[target] <= t < first_seen for t, _ in watched.calls), target
    assert not list(tmp_path.glob(".*.part"))


def test_close_places_what_is_pending_and_syncs_the_renames(tmp_path: Path) -> None:
    targets = [tmp_path / "a", tmp_path / "b"]
    watched = Watched(targets)
    placer = Placer(interval=60, sync=watched)  # a batch would wait a minute: close does not
    placer.sync_also(tmp_path)
    results: dict[Path, OSError | None] = {}
    for target in targets:
        tmp = target.with_name(f".{target.name}.part")
        _write(tmp, b"x")
        placer.add(tmp, target, _note(results, target))
    started = time.monotonic()
    placer.close()
    assert time.monotonic() - started < 30
    assert results == dict.fromkeys(targets)
    # the last sync came after the renames: it found every target in place
    assert watched.calls[-1][1] == set(targets)
    assert placer.errors == []


def test_a_rename_that_fails_is_reported_and_the_complete_file_stays(tmp_path: Path) -> None:
    good, blocked = tmp_path / "good.txt", tmp_path / "blocked"
    (blocked / "inside").mkdir(parents=True)  # a folder that is not empty: no rename onto it
    results: dict[Path, OSError | None] = {}
    placer = Placer(interval=0.01)
    for target in (good, blocked):
        tmp = target.with_name(f".{target.name}.part")
        _write(tmp, b"bytes\n")
        placer.add(tmp, target, _note(results, target))
    placer.close()
    assert results[good] is None and good.read_bytes() == b"bytes\n"
    error = results[blocked]
    assert isinstance(error, OSError) and error.errno in (21, 39)  # EISDIR / ENOTEMPTY
    assert (tmp_path / ".blocked.part").read_bytes() == b"bytes\n"
    assert os.path.isdir(blocked)
