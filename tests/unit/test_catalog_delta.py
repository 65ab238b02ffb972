"""Catalog deltas, pure: diff, encode/decode, merge checked against the recorded digest,
and when a delta gives way to a full catalog (compaction)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from syncagent.catalog.delta import (
    COMPACT_FRACTION,
    DELTA_MIN_BYTES,
    apply,
    decode_delta,
    diff,
    encode_delta,
    merge_checked,
    normalize,
    tree_digest,
    use_delta,
)
from syncagent.catalog.format import DELTA_VERSION, Entry, Header, decode, decode_all, encode
from syncagent.catalog.keeper import Base, BaseStore
from syncagent.errors import CatalogError

HEADER = Header("host", "/root", "/backup/root", 1_700_000_000.0)


def tree(n: int) -> list[Entry]:
    out = [Entry("d", "dir", mode=0o755, mtime_ns=1)]
    for i in range(n):
        p = f"d/f{i:04d}.txt"
        out.append(Entry(p, "file", i + 1, f"{i:032x}", 10**18 + i, 0o644, 1000 + i, p))
    return out


def through_base(entries: list[Entry]) -> list[Entry]:
    """Entries as a reader gets them back from a full catalog."""
    _, current, versions = decode_all(encode(HEADER, entries))
    return [*current, *versions]


def roundtrip(base: list[Entry], current: list[Entry], name: str = "catalog-b.jsonl.gz") -> bytes:
    changes = diff(base, current)
    assert changes.digest == tree_digest([normalize(e) for e in current])
    return encode_delta(HEADER, name, changes.digest, changes.changed, changes.removed)


def test_a_delta_holds_only_what_changed_and_merges_to_the_new_tree() -> None:
    base = through_base(tree(50))
    current = tree(50)
    current[3] = Entry("d/f0002.txt", "file", 99, "f" * 32, 5, 0o600, 77, "d/f0002.txt")
    del current[10]  # d/f0009.txt removed
    current.append(Entry("new：name", "file", 0, None, 1, 0o644))  # MD5 implied
    current.append(Entry("d/zero", "file", 0, None, 1, 0o644, remote="d/zero"))
    current.append(Entry("d/link", "symlink", target=b"\xff\xfe", mtime_ns=3))
    old_version = Entry("d/f0001.txt", "file", 2, "a" * 32, 4, None, 5, ".v/x", superseded=9.5)
    current.append(old_version)
    delta = decode_delta(roundtrip(base, current))
    assert sorted(e.path for e in delta.changed) == [
        "d/f0001.txt",
        "d/f0002.txt",
        "d/link",
        "d/zero",
        "new：name",
    ]
    assert delta.removed == [("d/f0009.txt", None)]
    merged = merge_checked(base, delta)
    assert merged == sorted(
        (normalize(e) for e in current), key=lambda e: (e.path, e.superseded or 0.0)
    )
    assert [e for e in merged if e.superseded is not None] == [normalize(old_version)]


def test_a_removed_version_is_told_apart_from_the_current_file() -> None:
    v = Entry("a", "file", 1, "b" * 32, 1, None, 9, ".v/a", superseded=3.0)
    base = through_base([Entry("a", "file", 2, "c" * 32, 2, 0o644, 10, "a"), v])
    current = [Entry("a", "file", 2, "c" * 32, 2, 0o644, 10, "a")]
    delta = decode_delta(roundtrip(base, current))
    assert (delta.changed, delta.removed) == ([], [("a", 3.0)])
    assert [e.superseded for e in merge_checked(base, delta)] == [None]


def test_a_delta_on_the_wrong_base_is_refused_not_merged() -> None:
    base = through_base(tree(20))
    current = tree(21)
    delta = decode_delta(roundtrip(base, current))
    other_base = through_base(tree(19))  # the base it names is not this one
    assert len(apply(other_base, delta)) == len(current) - 1  # a wrong tree...
    with pytest.raises(CatalogError, match="does not apply"):
        merge_checked(other_base, delta)  # ...that no reader is given


def test_a_torn_or_foreign_delta_is_refused_and_a_full_reader_refuses_a_delta() -> None:
    blob = roundtrip(through_base(tree(30)), tree(31))
    with pytest.raises(CatalogError):
        decode_delta(blob[: len(blob) // 2])
    with pytest.raises(CatalogError, match="full catalog, not a delta"):
        decode_delta(encode(HEADER, tree(3)))
    with pytest.raises(CatalogError, match="delta"):
        decode(blob)
    raw = gzip.decompress(blob).split(b"\n")
    assert b'"version": %d' % DELTA_VERSION in raw[0]
    dropped = b"\n".join(raw[:1] + raw[2:])  # a line lost: the count tells
    with pytest.raises(CatalogError, match="holds"):
        decode_delta(gzip.compress(dropped))


def test_deltas_are_used_for_a_large_base_until_they_grow_past_the_fraction() -> None:
    assert not use_delta(DELTA_MIN_BYTES - 1, 10)
    assert use_delta(DELTA_MIN_BYTES, 10)
    assert use_delta(4_000_000, int(4_000_000 * COMPACT_FRACTION))
    assert not use_delta(4_000_000, int(4_000_000 * COMPACT_FRACTION) + 1)
    assert use_delta(100, 20, min_bytes=0)


def test_a_one_file_change_in_a_large_tree_is_a_small_delta() -> None:
    base_entries = tree(5000)
    base_blob = encode(HEADER, base_entries)
    current = list(base_entries)
    current[100] = Entry("d/f0099.txt", "file", 7, "e" * 32, 8, 0o644, 5_000_000, "d/f0099.txt")
    blob = roundtrip(through_base(base_entries), current)
    assert len(blob) < 400 < len(base_blob) // 100


def test_the_keepers_local_base_is_refused_when_it_does_not_match_its_record(
    tmp_path: Path,
) -> None:
    store = BaseStore(tmp_path, 7)
    assert store.load() is None
    blob = encode(HEADER, tree(10))
    store.save(Base("catalog-a.jsonl.gz", 42, blob))
    assert store.load() == Base("catalog-a.jsonl.gz", 42, blob)
    store.save(Base("catalog-b.jsonl.gz", 43, blob + b"x"))
    assert sorted(p.name for p in store.folder.iterdir()) == ["base.json", "catalog-b.jsonl.gz"]
    (store.folder / "catalog-b.jsonl.gz").write_bytes(blob)  # not what was recorded
    assert store.load() is None  # the keeper then publishes a full catalog
    store.clear()
    assert list(store.folder.iterdir()) == []
