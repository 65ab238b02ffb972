"""monitoring.allow_remote: a non-loopback monitoring.host only when allowed, and then with a
warning (a config notice, logged at start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncagent.config import validate
from syncagent.errors import ConfigError


def _raw(root: Path, **monitoring: object) -> dict[str, object]:
    return {"roots": [{"local": str(root), "remote": "/b"}], "monitoring": monitoring}


def test_a_remote_host_needs_allow_remote_and_is_then_warned_about(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        validate(_raw(tmp_path, port=9877, host="0.0.0.0"), {})
    [problem] = info.value.problems
    assert problem.startswith("monitoring.host:") and "allow_remote" in problem

    cfg = validate(_raw(tmp_path, port=9877, host="0.0.0.0", allow_remote=True), {})
    assert cfg.monitor_host == "0.0.0.0"
    assert any("0.0.0.0 is not loopback" in n for n in cfg.notices)

    quiet = validate(_raw(tmp_path, port=9877, allow_remote=True), {})
    assert quiet.monitor_host == "127.0.0.1" and not quiet.notices
    with pytest.raises(ConfigError, match=r"monitoring\.allow_remote"):
        validate(_raw(tmp_path, allow_remote="yes please"), {})
