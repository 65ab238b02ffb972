"""/healthz and /metrics of the watch agent: the text format, and a real loopback server."""

from __future__ import annotations

import requests

from syncagent.monitor import MonitorServer, health, render_metrics


def test_metrics_text_format() -> None:
    text = render_metrics(
        {
            "passes": 3,
            "uploaded": 10,
            "bytes_uploaded": 4096,
            "failed": 1,
            "healthy": True,
            "phase": "idle",
            "last_pass_at": 1700000000.5,
        }
    )
    assert "# TYPE syncagent_uploaded_total counter\nsyncagent_uploaded_total 10\n" in text
    assert "syncagent_bytes_uploaded_total 4096" in text
    assert 'syncagent_phase{phase="idle"} 1' in text
    assert "syncagent_up 1" in text
    assert "syncagent_last_pass_timestamp_seconds 1700000000.500" in text


def test_server_answers_health_and_metrics() -> None:
    state: dict[str, object] = {"healthy": True, "phase": "scanning", "passes": 0}
    server = MonitorServer(lambda: dict(state)).start()
    try:
        ok = requests.get(f"{server.url}/healthz", timeout=5)
        assert (ok.status_code, ok.json()["phase"]) == (200, "scanning")
        state["healthy"] = False
        assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 503
        metrics = requests.get(f"{server.url}/metrics", timeout=5)
        assert metrics.status_code == 200 and "syncagent_up 0" in metrics.text
        assert requests.get(f"{server.url}/other", timeout=5).status_code == 404
    finally:
        server.stop()


def test_health_says_why_it_is_not_ok() -> None:
    base = {"healthy": True, "unhealthy_after": 60.0}
    assert health(base, now=1000.0) == (True, "ok")
    ok, why = health({**base, "failing_since": 990.0, "last_error": "refused"}, now=1000.0)
    assert ok  # an outage shorter than unhealthy_after is tolerated
    ok, why = health({**base, "failing_since": 900.0, "last_error": "refused"}, now=1000.0)
    assert not ok and "unreachable for 100 s: refused" in why
    ok, why = health({**base, "missing_roots": ["/srv/photos"]}, now=1000.0)
    assert not ok and "/srv/photos" in why
    ok, why = health({**base, "healthy": False, "fatal": "credentials refused"}, now=1000.0)
    assert not ok and "credentials refused" in why
    assert health({**base, "healthy": False}, now=1000.0) == (False, "stopped")
    down = {**base, "ledger_down_since": 970.0, "ledger_error": "connection refused"}
    ok, why = health(down, now=1000.0)  # at once: unhealthy_after is 123pan's allowance
    assert not ok and why == "ledger unreachable for 30 s: connection refused"
    assert "syncagent_ledger_reachable 0" in render_metrics(down)
    assert "syncagent_ledger_reachable 1" in render_metrics(base)
    failed = {**base, "pass_failed": "目录创建失败 [upload/v1/file/mkdir, code 2]"}
    ok, why = health(failed, now=1000.0)  # at once: 123pan answered, it refused
    assert not ok and why == "last pass failed: 目录创建失败 [upload/v1/file/mkdir, code 2]"


def test_a_held_root_is_degraded_with_its_reason_and_a_metric() -> None:
    snap: dict[str, object] = {
        "healthy": True,
        "held": {'/data/a "b"': "400 of 500 known files would change or be deleted"},
    }
    ok, reason = health(snap, 0.0)
    assert not ok
    assert reason.startswith("held by the mass-change guard: /data/a")
    assert "400 of 500" in reason and 'syncagent approve /data/a "b"' in reason
    text = render_metrics(snap)
    assert "syncagent_guard_held_roots 1" in text
    assert 'syncagent_guard_held{root="/data/a \\"b\\""} 1' in text
    server = MonitorServer(lambda: dict(snap)).start()
    try:
        answer = requests.get(f"{server.url}/healthz", timeout=5)
        assert (answer.status_code, answer.json()["status"]) == (503, "degraded")
    finally:
        server.stop()
    assert "syncagent_guard_held_roots 0" in render_metrics({"healthy": True})
