"""Unit tests of the emulator's fault plan: which call gets which fault, and reproducibility."""

from __future__ import annotations

import threading

from syncagent.emulator.faults import Fault, FaultPlan, RandomProfile

INFO = "api/v1/user/info"
LIST = "api/v2/file/list"


def test_empty_plan_injects_nothing() -> None:
    plan = FaultPlan()
    assert [plan.take(INFO) for _ in range(3)] == [None, None, None]
    assert plan.injected == 0
    assert plan.pending() == []


def test_times_are_counted_down_per_endpoint() -> None:
    plan = FaultPlan()
    fault = Fault("code", code=429, message="slow down")
    plan.add(INFO, fault, times=2)
    assert plan.take(LIST) is None
    assert plan.pending() == [{"endpoint": INFO, "kind": "code", "remaining": 2}]
    assert plan.take(INFO) == fault
    assert plan.pending() == [{"endpoint": INFO, "kind": "code", "remaining": 1}]
    assert plan.take(INFO) == fault
    assert plan.take(INFO) is None
    assert plan.pending() == []
    assert plan.injected == 2


def test_none_times_lasts_until_cleared() -> None:
    plan = FaultPlan()
    plan.add(INFO, Fault("http", http_status=503), times=None)
    assert all(plan.take(INFO) == Fault("http", http_status=503) for _ in range(50))
    assert plan.pending() == [{"endpoint": INFO, "kind": "http", "remaining": None}]
    plan.clear()
    assert plan.take(INFO) is None
    assert plan.injected == 50


def test_star_matches_every_endpoint_and_rules_apply_in_order() -> None:
    plan = FaultPlan()
    plan.add("*", Fault("code", code=1, message="any"), times=2)
    plan.add(INFO, Fault("code", code=401, message="own"), times=1)
    assert plan.take(LIST) == Fault("code", code=1, message="any")
    assert plan.take(INFO) == Fault("code", code=1, message="any")  # the older rule first
    assert plan.take(LIST) is None
    assert plan.take(INFO) == Fault("code", code=401, message="own")
    assert plan.take(INFO) is None


def test_slashes_around_the_endpoint_are_ignored() -> None:
    plan = FaultPlan()
    plan.add("/api/v1/user/info/", Fault("drop"), times=1)
    assert plan.take(INFO) == Fault("drop")


def test_code_faults_get_a_default_message() -> None:
    plan = FaultPlan()
    for code in (429, 401, 20103, 1, 7777):
        plan.add(INFO, Fault("code", code=code))
    messages = [f.message for f in (plan.take(INFO) for _ in range(5)) if f is not None]
    assert messages[0] == "请求太频繁"
    assert messages[1] == "access_token无效"
    assert messages[2] == "文件正在校验中,请间隔1秒后再试"
    assert messages[3] and messages[4]
    plan.add(INFO, Fault("code", code=429, message="mine"))
    taken = plan.take(INFO)
    assert taken is not None and taken.message == "mine"


def _sequence(plan: FaultPlan, endpoint: str, n: int) -> list[Fault | None]:
    return [plan.take(endpoint) for _ in range(n)]


def test_random_profile_is_reproducible() -> None:
    runs = []
    for seed in (7, 7, 8):
        plan = FaultPlan()
        plan.set_random(RandomProfile(seed, probability=0.5))
        runs.append(_sequence(plan, INFO, 200))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    hits = [f for f in runs[0] if f is not None]
    assert 60 < len(hits) < 140
    assert {f.kind for f in hits} == {"code", "http", "drop", "delay"}
    assert {f.code for f in hits if f.kind == "code"} <= {429, 1}
    assert {f.http_status for f in hits if f.kind == "http"} <= {500, 502, 503, 504}
    assert all(0 <= f.seconds <= 0.2 for f in hits if f.kind == "delay")


def test_random_profile_resets_with_the_same_seed() -> None:
    plan = FaultPlan()
    plan.set_random(RandomProfile(3, probability=0.3))
    first = _sequence(plan, INFO, 50)
    plan.set_random(RandomProfile(3, probability=0.3))
    assert _sequence(plan, INFO, 50) == first


def test_random_profile_probability_kinds_and_endpoints() -> None:
    plan = FaultPlan()
    plan.set_random(RandomProfile(1, probability=0.0))
    assert _sequence(plan, INFO, 100) == [None] * 100
    plan.set_random(RandomProfile(1, probability=1.0, kinds=("code",), endpoints=(LIST,)))
    assert _sequence(plan, INFO, 20) == [None] * 20
    got = _sequence(plan, LIST, 20)
    assert all(f is not None and f.kind == "code" for f in got)
    plan.set_random(RandomProfile(1, probability=1.0, kinds=("code",)))
    completes = _sequence(plan, "upload/v2/file/upload_complete", 10)
    assert all(f is not None and f.code == 20103 for f in completes)


def test_explicit_rules_come_before_the_random_profile() -> None:
    plan = FaultPlan()
    plan.set_random(RandomProfile(1, probability=1.0, kinds=("delay",)))
    plan.add(INFO, Fault("drop"), times=1)
    assert plan.take(INFO) == Fault("drop")
    nxt = plan.take(INFO)
    assert nxt is not None and nxt.kind == "delay"
    plan.clear()
    assert plan.take(INFO) is None  # clear removes the profile too


def test_concurrent_takes_consume_each_use_once() -> None:
    plan = FaultPlan()
    plan.add(INFO, Fault("code", code=429), times=100)
    got: list[Fault | None] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = [plan.take(INFO) for _ in range(50)]
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(f is not None for f in got) == 100
    assert plan.injected == 100
    assert plan.pending() == []
