"""Where the CLI finds sync.yaml without --config, the image's own config, and the monitor port
from the environment (the container's HEALTHCHECK relies on both)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncagent.cli.common import discover_config
from syncagent.config import load_config
from syncagent.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    xdg = tmp_path / "xdg"
    env = {"XDG_CONFIG_HOME": str(xdg), "HOME": str(tmp_path)}
    assert discover_config(env) is None or discover_config(env) == Path("/etc/syncagent/sync.yaml")
    (xdg / "syncagent").mkdir(parents=True)
    (xdg / "syncagent" / "sync.yaml").write_text("roots: []\n")
    assert discover_config(env) == xdg / "syncagent" / "sync.yaml"
    (tmp_path / "sync.yaml").write_text("roots: []\n")
    assert discover_config(env) == Path("sync.yaml")  # ./sync.yaml before the user's file
    assert discover_config({**env, "SYNCAGENT_CONFIG": "/x.yaml"}) == Path("/x.yaml")


def test_xdg_default_is_dot_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".config" / "syncagent").mkdir(parents=True)
    (tmp_path / ".config" / "syncagent" / "sync.yaml").write_text("roots: []\n")
    assert discover_config({}) == tmp_path / ".config" / "syncagent" / "sync.yaml"


def test_the_images_config_is_valid(tmp_path: Path) -> None:
    """deploy/container-sync.yaml, with the image's /data moved under tmp_path (it must exist)."""
    (tmp_path / "data").mkdir()
    text = (REPO / "deploy" / "container-sync.yaml").read_text(encoding="utf-8")
    assert "local: /data\n" in text
    cfg = tmp_path / "sync.yaml"
    cfg.write_text(text.replace("local: /data\n", f"local: {tmp_path}/data\n"), encoding="utf-8")
    config = load_config(cfg, env={})
    assert [r.remote for r in config.roots] == ["/syncagent/data"]
    assert config.state_dir == Path("/state/syncagent")


def test_monitor_port_from_the_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "sync.yaml"
    cfg.write_text(f"roots:\n  - local: {tmp_path}\n    remote: /x\n", encoding="utf-8")
    assert load_config(cfg, env={}).monitor_port is None
    assert load_config(cfg, env={"SYNCAGENT_MONITOR_PORT": "8765"}).monitor_port == 8765
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={"SYNCAGENT_MONITOR_PORT": "http"})
    assert "SYNCAGENT_MONITOR_PORT" in err.value.message
