"""``repo.get_values(prefix)``: exactly the ``kv`` keys that start with the prefix, read as a
range of the primary key (a no-op pass asks for a handful among 100,000s of version
records)."""

from __future__ import annotations

from pathlib import Path

from syncagent.app import open_ledger
from syncagent.config import validate
from syncagent.ledger import repo


def test_a_prefix_reads_exactly_its_keys(tmp_path: Path, ledger_url: str) -> None:
    (tmp_path / "docs").mkdir()
    config = validate(
        {
            "roots": [{"local": str(tmp_path / "docs"), "remote": "/d"}],
            "state_dir": str(tmp_path / "state"),
            "ledger": {"url": ledger_url},
        },
        {},
    )
    ledger = open_ledger(config)
    try:
        keys = [
            "version.1.5",
            "version.1.60",
            "version.10.7",
            "version/",  # the character right after "." : outside the range
            "versionX",
            "version",
            "versio",
            "catalog.1",
            "guard_hold:1",
            "guard_approved:1",
            "guard%x",  # LIKE's wildcards in a key are only characters
        ]
        for key in keys:
            repo.set_value(ledger, key, f"v-{key}")
        assert repo.get_values(ledger, "version.1.") == {
            "version.1.5": "v-version.1.5",
            "version.1.60": "v-version.1.60",
        }
        assert sorted(repo.get_values(ledger, "version.")) == [
            "version.1.5",
            "version.1.60",
            "version.10.7",
        ]
        assert sorted(repo.get_values(ledger, "guard_")) == ["guard_approved:1", "guard_hold:1"]
        assert list(repo.get_values(ledger, "catalog.")) == ["catalog.1"]
        assert repo.get_values(ledger, "nothing.") == {}
        assert sorted(repo.get_values(ledger, "")) == sorted(keys)
    finally:
        ledger.close()
