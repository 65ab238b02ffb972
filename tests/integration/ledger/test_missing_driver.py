"""A ledger URL whose database driver is not installed: one clear message, not a traceback."""

from __future__ import annotations

import sys

import pytest

from syncagent.errors import LedgerError
from syncagent.ledger import Ledger


def test_a_postgresql_url_without_its_driver_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # absent, even where it is installed
    with pytest.raises(LedgerError) as err:
        Ledger("postgresql+psycopg://agent:hunter2@127.0.0.1:5432/ledger")
    assert "psycopg" in err.value.message
    assert "syncagent[postgres]" in err.value.message
    assert "hunter2" not in err.value.message
