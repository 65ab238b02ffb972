"""-q/-v/-vv levels, and the log file rotated by size."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncagent.cli import common
from syncagent.config import load_config


def test_levels_by_verbosity() -> None:
    assert common.log_levels("info", -1) == (logging.WARNING, logging.WARNING)
    assert common.log_levels("info", 0) == (logging.INFO, logging.INFO)
    assert common.log_levels("warning", 0) == (logging.WARNING, logging.WARNING)
    assert common.log_levels("info", 1) == (logging.DEBUG, logging.INFO)  # decisions
    assert common.log_levels("info", 2) == (logging.DEBUG, logging.DEBUG)  # requests too


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for h in root.handlers:
        h.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("syncagent.pan123").setLevel(logging.NOTSET)


def test_the_log_file_is_rotated_by_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    cfg = tmp_path / "sync.yaml"
    log_file = tmp_path / "logs" / "syncagent.log"
    log_file.parent.mkdir()
    cfg.write_text(
        f"roots:\n  - local: {tmp_path}\n    remote: /x\nlogging: {{file: {log_file}}}\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(common, "LOG_ROTATE_BYTES", 2000)
    common.setup_logging(load_config(cfg, env={}), 0)
    log = logging.getLogger("syncagent")
    for i in range(200):
        log.info("line %d of a long enough message to fill the file quickly", i)
    rotated = sorted(p.name for p in log_file.parent.iterdir())
    assert rotated == [
        "syncagent.log",
        *(f"syncagent.log.{n}" for n in range(1, common.LOG_ROTATE_KEEP + 1)),
    ]
    assert all(p.stat().st_size <= 2100 for p in log_file.parent.iterdir())
    assert "line 199 " in log_file.read_text(encoding="utf-8")


def test_every_command_takes_q_and_v() -> None:
    import click

    from syncagent.cli import main

    def commands(group: click.Group, name: str) -> list[tuple[str, click.Command]]:
        found: list[tuple[str, click.Command]] = []
        for sub, command in group.commands.items():
            if isinstance(command, click.Group):
                found += commands(command, f"{name} {sub}")
            else:
                found.append((f"{name} {sub}", command))
        return found

    listed = commands(main, "syncagent")
    assert len(listed) >= 10
    for name, command in listed:
        opts = {o for p in command.params for o in getattr(p, "opts", [])}
        assert {"-q", "-v"} <= opts, name
