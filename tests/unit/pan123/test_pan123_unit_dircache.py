"""Unit tests of the remote directory cache against an in-memory fake of mkdir and listing."""

from __future__ import annotations

import threading
import time

import pytest

from syncagent.errors import RemoteConflictError, RemoteNotFoundError
from syncagent.pan123.dircache import DirCache
from syncagent.pan123.models import RemoteFile

ROOT = 1
OTHER_ROOT = 2


class FakeDrive:
    """Folders and files by ID, with 123pan's mkdir and list semantics (as far as needed)."""

    def __init__(self) -> None:
        self.items: dict[int, RemoteFile] = {}
        self.next_id = 100
        self.mkdirs: list[tuple[str, int]] = []
        self.lists: list[int] = []
        self.lock = threading.Lock()
        self.mkdir_delay_yields = 0
        for root in (ROOT, OTHER_ROOT):
            self.items[root] = RemoteFile(root, f"root{root}", True, 0, "", 0, False)

    def add(self, name: str, parent: int, *, folder: bool = True, trashed: bool = False) -> int:
        with self.lock:
            self.next_id += 1
            self.items[self.next_id] = RemoteFile(
                self.next_id, name, folder, 0 if folder else 5, "", parent, trashed
            )
            return self.next_id

    def remove(self, file_id: int) -> None:
        """Delete a folder and everything below it (as if removed in the web UI)."""
        with self.lock:
            doomed = {file_id}
            grew = True
            while grew:
                more = {i for i, f in self.items.items() if f.parent_id in doomed} - doomed
                grew = bool(more)
                doomed |= more
            for i in doomed:
                del self.items[i]

    def children(self, parent: int) -> list[RemoteFile]:
        return [f for f in self.items.values() if f.parent_id == parent]

    def mkdir(self, name: str, parent: int) -> int:
        for _ in range(self.mkdir_delay_yields):
            time.sleep(0)  # yield to other threads while "on the network"
        with self.lock:
            self.mkdirs.append((name, parent))
            if parent not in self.items:
                raise RemoteNotFoundError("父级目录不存在", code=5066, endpoint="mkdir")
            if any(f.name == name and not f.trashed for f in self.children(parent)):
                raise RemoteConflictError("该目录下已经有同名文件夹", code=1, endpoint="mkdir")
        return self.add(name, parent)

    def list_all(self, parent: int) -> list[RemoteFile]:
        with self.lock:
            self.lists.append(parent)
            if parent not in self.items:
                raise RemoteNotFoundError("目录不存在", code=5066, endpoint="list")
            return self.children(parent)

    def path_of(self, file_id: int) -> str:
        parts = []
        while file_id not in (ROOT, OTHER_ROOT):
            f = self.items[file_id]
            parts.append(f.name)
            file_id = f.parent_id
        return "/".join(reversed(parts))


@pytest.fixture
def drive() -> FakeDrive:
    return FakeDrive()


@pytest.fixture
def cache(drive: FakeDrive) -> DirCache:
    return DirCache(drive.mkdir, drive.list_all)


def test_nested_path_is_created_once(drive: FakeDrive, cache: DirCache) -> None:
    c = cache.ensure(ROOT, "a/b/c")
    assert drive.path_of(c) == "a/b/c"
    a = cache.get(ROOT, "a")
    b = cache.get(ROOT, "a/b")
    assert a is not None and b is not None
    assert drive.mkdirs == [("a", ROOT), ("b", a), ("c", b)]
    assert cache.ensure(ROOT, "a/b/c") == c
    assert cache.ensure(ROOT, "/a/b/c/") == c
    assert cache.ensure(ROOT, "a/b") == b
    assert len(drive.mkdirs) == 3
    d = cache.ensure(ROOT, "a/b/d")
    assert drive.mkdirs[3:] == [("d", b)]
    assert drive.path_of(d) == "a/b/d"
    assert drive.lists == []


def test_empty_path_is_the_root_itself(drive: FakeDrive, cache: DirCache) -> None:
    assert cache.ensure(ROOT, "") == ROOT
    assert cache.ensure(ROOT, "/") == ROOT
    assert drive.mkdirs == []


def test_roots_are_kept_apart(drive: FakeDrive, cache: DirCache) -> None:
    one = cache.ensure(ROOT, "a")
    two = cache.ensure(OTHER_ROOT, "a")
    assert one != two
    assert drive.items[two].parent_id == OTHER_ROOT


def test_existing_folder_is_found_by_listing(drive: FakeDrive, cache: DirCache) -> None:
    existing = drive.add("a", ROOT)
    drive.add("a-file", ROOT, folder=False)
    assert cache.ensure(ROOT, "a") == existing
    assert drive.mkdirs == [("a", ROOT)]
    assert drive.lists == [ROOT]
    assert cache.get(ROOT, "a") == existing
    assert cache.ensure(ROOT, "a") == existing
    assert drive.lists == [ROOT]  # cached: not listed again


def test_existing_folder_is_found_among_trashed_namesakes(drive: FakeDrive) -> None:
    trashed = drive.add("a", ROOT, trashed=True)
    live = drive.add("a", ROOT)
    listed = [drive.items[trashed], drive.items[live]]

    def mkdir(name: str, parent: int) -> int:
        raise RemoteConflictError("同名文件夹", code=1)

    cache = DirCache(mkdir, lambda parent: listed)
    assert cache.ensure(ROOT, "a") == live


def test_a_file_in_the_way_is_a_conflict(drive: FakeDrive, cache: DirCache) -> None:
    drive.add("a", ROOT, folder=False)
    with pytest.raises(RemoteConflictError) as info:
        cache.ensure(ROOT, "a/b")
    assert "'a'" in info.value.message
    assert "in the way" in info.value.message
    assert cache.get(ROOT, "a") is None
    assert drive.mkdirs == [("a", ROOT)]  # nothing tried below it


def test_flush_removes_the_subtree_only(cache: DirCache) -> None:
    for rel in ["a", "a/b", "a/b/c", "ab", "ab/c", "x/a"]:
        cache.put(ROOT, rel, len(rel))
    cache.put(OTHER_ROOT, "a", 99)
    cache.flush(ROOT, "a/")
    assert [cache.get(ROOT, r) for r in ["a", "a/b", "a/b/c"]] == [None, None, None]
    assert [cache.get(ROOT, r) for r in ["ab", "ab/c", "x/a"]] == [2, 4, 3]
    assert cache.get(OTHER_ROOT, "a") == 99


def test_flush_of_a_nested_prefix_keeps_its_parent(cache: DirCache) -> None:
    for rel in ["a", "a/b", "a/b/c", "a/bc"]:
        cache.put(ROOT, rel, len(rel))
    cache.flush(ROOT, "a/b")
    assert cache.get(ROOT, "a") == 1
    assert cache.get(ROOT, "a/bc") == 4
    assert cache.get(ROOT, "a/b") is None
    assert cache.get(ROOT, "a/b/c") is None


def test_flush_without_prefix_forgets_that_root_only(cache: DirCache) -> None:
    cache.put(ROOT, "a", 5)
    cache.put(ROOT, "b/c", 6)
    cache.put(OTHER_ROOT, "a", 7)
    cache.flush(ROOT)
    assert cache.get(ROOT, "a") is None
    assert cache.get(ROOT, "b/c") is None
    assert cache.get(OTHER_ROOT, "a") == 7


def test_a_gone_cached_parent_is_flushed_and_recreated_once(
    drive: FakeDrive, cache: DirCache
) -> None:
    old_b = cache.ensure(ROOT, "a/b")
    old_a = cache.get(ROOT, "a")
    assert old_a is not None
    drive.remove(old_a)  # someone deleted "a" (and "a/b") on 123pan
    calls_before = len(drive.mkdirs)
    c = cache.ensure(ROOT, "a/b/c")
    new_a = cache.get(ROOT, "a")
    new_b = cache.get(ROOT, "a/b")
    assert new_a is not None and new_b is not None
    assert new_a != old_a and new_b != old_b
    assert drive.path_of(c) == "a/b/c"
    assert drive.mkdirs[calls_before:] == [("c", old_b), ("a", ROOT), ("b", new_a), ("c", new_b)]


def test_a_sibling_subtree_survives_the_flush(drive: FakeDrive, cache: DirCache) -> None:
    cache.ensure(ROOT, "a/b")
    keep = cache.ensure(ROOT, "z/y")
    b = cache.get(ROOT, "a/b")
    assert b is not None
    drive.remove(b)
    cache.ensure(ROOT, "a/b/c")
    assert cache.get(ROOT, "z/y") == keep


def test_gone_again_after_recreating_is_raised_not_looped(drive: FakeDrive) -> None:
    calls: list[tuple[str, int]] = []

    def mkdir(name: str, parent: int) -> int:
        calls.append((name, parent))
        if parent != ROOT:
            raise RemoteNotFoundError("父级目录不存在", code=5066)
        return 500 + len(calls)

    cache = DirCache(mkdir, drive.list_all)
    cache.put(ROOT, "a", 42)
    with pytest.raises(RemoteNotFoundError):
        cache.ensure(ROOT, "a/b")
    assert calls == [("b", 42), ("a", ROOT), ("b", 502)]
    assert cache.get(ROOT, "a/b") is None


def test_a_gone_root_is_raised_at_once(drive: FakeDrive) -> None:
    cache = DirCache(drive.mkdir, drive.list_all)
    with pytest.raises(RemoteNotFoundError):
        cache.ensure(12345, "a/b")
    assert drive.mkdirs == [("a", 12345)]


def test_concurrent_ensure_of_one_path_makes_each_folder_once(drive: FakeDrive) -> None:
    drive.mkdir_delay_yields = 20
    cache = DirCache(drive.mkdir, drive.list_all)
    n = 8
    barrier = threading.Barrier(n)
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(path: str) -> None:
        try:
            barrier.wait(timeout=5)
            got = cache.ensure(ROOT, path)
            with lock:
                results.append(got)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=("x/y/z",)) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not errors
    assert len(results) == n and len(set(results)) == 1
    assert sorted(name for name, _ in drive.mkdirs) == ["x", "y", "z"]
    assert drive.lists == []  # no conflicts, so no listing either
    assert drive.path_of(results[0]) == "x/y/z"


def test_only_the_deep_parent_gone_reuses_the_surviving_ancestor(
    drive: FakeDrive, cache: DirCache
) -> None:
    cache.ensure(ROOT, "a/b")
    a = cache.get(ROOT, "a")
    b = cache.get(ROOT, "a/b")
    assert a is not None and b is not None
    drive.remove(b)  # "a" is still there
    c = cache.ensure(ROOT, "a/b/c")
    assert cache.get(ROOT, "a") == a  # found again (mkdir conflict, then listing)
    assert drive.path_of(c) == "a/b/c"
    assert drive.items[drive.items[c].parent_id].parent_id == a
    assert drive.lists == [ROOT]
