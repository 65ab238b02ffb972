"""The pause file: written atomically, read back, ended by its time or by resume, a damaged
one holding until resumed, and the agent's cached view of it."""

from __future__ import annotations

from pathlib import Path

from syncagent.pause import PAUSE_FILE, Pause, PauseWatch, clear_pause, read_pause, write_pause


def test_a_pause_until_resumed(tmp_path: Path) -> None:
    state = tmp_path / "state"  # made by the pause if missing
    pause = write_pause(state, None, now=1000.0)
    assert read_pause(state, now=10**10) == pause == Pause(1000.0, None)
    assert "until `syncagent resume`" in pause.describe()
    assert [p.name for p in state.iterdir()] == [PAUSE_FILE]  # no temp file left
    assert clear_pause(state) == pause
    assert read_pause(state) is None
    assert clear_pause(state) is None  # nothing to resume


def test_a_pause_for_a_while_ends_by_itself(tmp_path: Path) -> None:
    write_pause(tmp_path, 2000.0, now=1000.0)
    assert read_pause(tmp_path, now=1999.0) == Pause(1000.0, 2000.0)
    assert read_pause(tmp_path, now=2000.0) is None
    assert Pause(1000.0, 2000.0).describe().startswith("paused until ")


def test_a_damaged_pause_file_holds_until_resumed(tmp_path: Path) -> None:
    (tmp_path / PAUSE_FILE).write_text("{not json", encoding="utf-8")
    held = read_pause(tmp_path)
    assert held is not None and held.unreadable
    assert "cannot be read" in held.describe()
    (tmp_path / PAUSE_FILE).write_text('{"since": "x", "until": null}', encoding="utf-8")
    assert read_pause(tmp_path) is not None
    clear_pause(tmp_path)
    assert read_pause(tmp_path) is None


def test_the_agents_view_reads_the_file_once_a_second_or_when_expired(tmp_path: Path) -> None:
    now = [0.0]
    watch = PauseWatch(tmp_path, every=1.0, clock=lambda: now[0])
    assert watch.current() is None
    write_pause(tmp_path, None)
    now[0] = 0.5
    assert watch.current() is None  # not read again yet
    now[0] = 1.0
    assert watch.current() is not None
    clear_pause(tmp_path)
    now[0] = 1.2
    assert watch.current() is not None
    watch.expire()
    assert watch.current() is None
