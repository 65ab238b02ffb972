"""``syncagent run``: the watch agent as a subprocess against the emulator, with bounded waits."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Api, md5
from test_sync_cli import (
    BIN,
    assert_same_tree,
    catalog_objects,
    cli_env,
    file_uploads,
    folder_id,
    local_files,
    remote_files,
)

from syncagent.catalog import CATALOG_DIR
from syncagent.emulator import Emulator

QUIET = 1.0


def _config(
    tmp: Path, root: Path, watch: str = "auto", mode: str = "archive", max_deletes: int = 100
) -> Path:
    state = tmp / "state"
    path = tmp / "sync.yaml"
    path.write_text(
        "roots:\n"
        f"  - local: {json.dumps(str(root))}\n"
        "    remote: /agent\n"
        f"    watch: {watch}\n"
        f"    mode: {mode}\n"
        f"    max_deletes: {max_deletes}\n"
        "    poll_interval: 1s\n"
        f"state_dir: {json.dumps(str(state))}\n"
        f"stability: {{quiet: {QUIET}s}}\n"
        "limits: {qps: off}\n",
        encoding="utf-8",
    )
    return path


def _wait(predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``predicate`` held; fails after ``timeout``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def _start(config: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """The agent, its output going to ``agent.log`` beside the config: a pipe nobody reads
    fills up after a few hundred log lines and then blocks the agent."""
    with open(config.parent / "agent.log", "a", encoding="utf-8") as log:
        return subprocess.Popen(
            [str(BIN), "run", "--config", str(config)],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _log(config: Path) -> str:
    return (config.parent / "agent.log").read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def agent(
    emulator: Emulator, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], Path, Path, dict[str, str]]]:
    root = tmp_path / "root"
    root.mkdir()
    config = _config(tmp_path, root)
    env = cli_env(tmp_path, emulator)
    proc = _start(config, env, tmp_path)
    yield proc, root, config, env
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _uploaded(api: Api) -> dict[str, str]:
    try:
        return {rel: f["etag"] for rel, f in remote_files(api, "/agent").items()}
    except AssertionError:  # the remote root does not exist yet
        return {}


def test_new_file_arrives_within_the_quiet_window_plus_2s_and_sigterm_stops_it(
    agent: tuple[subprocess.Popen[str], Path, Path, dict[str, str]],
    api: Api,
    emulator: Emulator,
) -> None:
    proc, root, _, _ = agent
    _wait(lambda: (root.parent / "state" / "agent.lock").exists(), 20)
    time.sleep(1.0)  # the startup pass is over and the watcher is on
    (root / "new.txt").write_text("hello agent")  # written and closed here
    took = _wait(lambda: "new.txt" in _uploaded(api), QUIET + 10)
    assert took <= QUIET + 2, f"uploaded {took:.2f} s after close"
    t0 = time.monotonic()
    _stop(proc)  # SIGTERM: exits 0 within 10 s
    assert time.monotonic() - t0 < 10


def test_a_burst_of_files_arrives_each_exactly_once(
    agent: tuple[subprocess.Popen[str], Path, Path, dict[str, str]],
    api: Api,
    emulator: Emulator,
) -> None:
    proc, root, _, _ = agent
    time.sleep(2.0)
    before = file_uploads(emulator)
    for i in range(60):  # like an unzip: many files in quick succession
        sub = root / f"d{i % 4}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"file {i}")
    _wait(lambda: len(_uploaded(api)) == 60, 30)
    time.sleep(QUIET + 0.5)  # nothing more must come
    assert file_uploads(emulator) - before == 60
    _stop(proc)  # SIGTERM: exits 0 within 10 s


def test_cp_r_of_a_1000_file_tree_arrives_each_exactly_once(
    agent: tuple[subprocess.Popen[str], Path, Path, dict[str, str]],
    api: Api,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    proc, root, _, _ = agent
    source = tmp_path / "source"
    for i in range(1000):
        sub = source / f"s{i % 10}" / f"t{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"file{i}.txt").write_text(f"content of file {i}")
    time.sleep(2.0)  # the startup pass is over
    before = file_uploads(emulator)
    subprocess.run(["cp", "-r", str(source), str(root / "copy")], check=True)

    def sent() -> int:
        return file_uploads(emulator) - int(before)

    # Wait on the emulator's counter: listing 70 remote folders every 50 ms would starve
    # the emulator, which runs in this process.
    _wait(lambda: sent() >= 1000, 90)
    time.sleep(QUIET + 1.0)  # nothing more must come
    assert sent() == 1000
    uploaded = _uploaded(api)
    assert uploaded["copy/s3/t3/file3.txt"] == md5(b"content of file 3")
    assert uploaded["copy/s9/t5/file999.txt"] == md5(b"content of file 999")
    assert "already exists" not in _log(tmp_path / "sync.yaml")  # no watchdog warning spam
    _stop(proc)  # SIGTERM: exits 0 within 10 s


def test_a_file_written_in_pieces_for_10s_is_uploaded_once_with_its_final_content(
    agent: tuple[subprocess.Popen[str], Path, Path, dict[str, str]],
    api: Api,
    emulator: Emulator,
) -> None:
    """Pauses shorter than the quiet window: no pass may send it before it is complete,
    even the ones forced while the root keeps changing."""
    proc, root, _, _ = agent
    time.sleep(2.0)
    before = file_uploads(emulator)
    pieces = [f"piece {i:02d} ".encode() * 64 for i in range(20)]
    t0 = time.monotonic()
    with open(root / "download.bin", "wb") as f:
        for piece in pieces:
            f.write(piece)
            f.flush()
            time.sleep(QUIET / 2)  # 20 pieces, 0.5 s apart: 10 s
    assert time.monotonic() - t0 >= 10
    assert "download.bin" not in _uploaded(api)
    _wait(lambda: "download.bin" in _uploaded(api), QUIET + 10)
    time.sleep(QUIET + 1.0)
    assert _uploaded(api)["download.bin"] == md5(b"".join(pieces))
    assert file_uploads(emulator) - before == 1
    _stop(proc)  # SIGTERM: exits 0 within 10 s


def test_a_second_agent_or_a_sync_on_the_same_state_dir_is_told_who_holds_it(
    agent: tuple[subprocess.Popen[str], Path, Path, dict[str, str]],
) -> None:
    proc, root, config, env = agent
    _wait(lambda: (root.parent / "state" / "agent.lock").exists(), 20)
    time.sleep(0.5)
    # neither a second agent nor a sync may upload beside it; a dry run may look
    for argv in (["run"], ["sync"], ["sync", "--dry-run"]):
        second = subprocess.run(
            [str(BIN), *argv, "--config", str(config)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if argv[-1] == "--dry-run":
            assert second.returncode == 0, second.stderr[-2000:]
        else:
            assert second.returncode == 1, (argv, second.stderr[-2000:])
            assert f"pid {proc.pid}" in second.stderr
            assert "Traceback" not in second.stderr
    _stop(proc)  # SIGTERM: exits 0 within 10 s


def test_a_polled_root_picks_up_a_new_file(emulator: Emulator, api: Api, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    proc = _start(_config(tmp_path, root, watch="poll"), cli_env(tmp_path, emulator), tmp_path)
    try:
        time.sleep(2.0)
        (root / "polled.txt").write_text("seen by polling")
        took = _wait(lambda: "polled.txt" in _uploaded(api), 15)
        assert took <= 1.0 + QUIET + 2.5  # poll interval + quiet window + a pass
        _stop(proc)  # SIGTERM: exits 0 within 10 s
        assert "(poll)" in _log(tmp_path / "sync.yaml")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_editor_style_atomic_save_uploads_the_new_content_once(
    agent: tuple[subprocess.Popen[str], Path, Path, dict[str, str]],
    api: Api,
    emulator: Emulator,
) -> None:
    proc, root, config, _ = agent
    target = root / "notes.txt"  # written at once: the agent may still be starting up
    target.write_text("version 1")
    _wait(lambda: "notes.txt" in _uploaded(api), 15)
    before = file_uploads(emulator)
    # What editors do: write a temp file beside the target, then rename it over the target.
    for temp in (root / ".notes.txt.swp", root / "notes.txt.tmp", root / "notes.txt~"):
        temp.write_text("version 2, being written")
        temp.unlink()
    tmp = root / ".notes.txt.part"
    tmp.write_text("version 2")
    tmp.replace(target)
    want = md5(b"version 2")
    try:
        _wait(lambda: _uploaded(api).get("notes.txt") == want, 15)
    except AssertionError:
        proc.kill()
        raise AssertionError(_log(config)[-3000:]) from None
    time.sleep(QUIET + 0.5)
    assert file_uploads(emulator) - before == 1
    assert set(_uploaded(api)) == {"notes.txt"}  # no temp file reached the cloud
    _stop(proc)  # SIGTERM: exits 0 within 10 s


def test_status_shows_what_the_running_agent_is_doing(
    agent: tuple[subprocess.Popen[str], Path, Path, dict[str, str]],
) -> None:
    proc, root, config, env = agent
    _wait(lambda: (root.parent / "state" / "agent.lock").exists(), 20)

    def status() -> dict[str, object]:
        out = subprocess.run(
            [str(BIN), "status", "--json", "--config", str(config)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    def phase() -> object:
        info = status().get("agent")
        return info.get("phase") if isinstance(info, dict) else None

    _wait(lambda: phase() == "idle", 20)
    agent_info = status()["agent"]
    assert isinstance(agent_info, dict) and agent_info["pid"] == proc.pid
    text = subprocess.run(
        [str(BIN), "status", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert f"agent: pid {proc.pid}, idle" in text
    _stop(proc)  # SIGTERM: exits 0 within 10 s
    assert status()["agent"] is None  # a stopped agent never looks busy


def test_healthz_and_metrics_on_a_loopback_port(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    import socket

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tmp_path / "root"
    for i in range(1500):  # a first pass that takes a few seconds
        (root / f"d{i % 15}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 15}" / f"f{i}.txt").write_text(f"file {i}")
    config = _config(tmp_path, root)
    config.write_text(config.read_text() + f"monitoring: {{port: {port}}}\n")
    proc = _start(config, cli_env(tmp_path, emulator), tmp_path)
    base = f"http://127.0.0.1:{port}"
    phases: list[str] = []

    def healthy() -> bool:
        try:
            answer = requests.get(f"{base}/healthz", timeout=2)
        except requests.ConnectionError:
            return False
        phases.append(answer.json()["phase"] if answer.status_code == 200 else "unhealthy")
        return answer.status_code == 200 and phases[-1] == "idle"

    try:
        _wait(healthy, 60)
        # healthy all through the first pass, long as it was
        assert "unhealthy" not in phases
        assert {"scanning", "uploading"} & set(phases), phases
        (root / "m.txt").write_text("metrics")
        _wait(lambda: "m.txt" in _uploaded(api), 15)
        _wait(
            lambda: (
                "\nsyncagent_uploaded_total 1501\n"
                in requests.get(f"{base}/metrics", timeout=2).text
            ),
            10,
        )
        _stop(proc)  # SIGTERM: exits 0 within 10 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_mid_chunked_upload_exits_fast_and_a_restart_sends_only_missing_slices(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    slice_size = 64 * 1024
    emulator.configure(slice_size=slice_size)
    emulator.add_latency("upload/v2/file/slice", 0.2)  # every slice takes a while
    root = tmp_path / "root"
    root.mkdir()
    config = _config(tmp_path, root)
    config.write_text(config.read_text() + "upload: {single_threshold: 64KiB, slice_workers: 2}\n")
    big = root / "big.bin"
    data = bytes(range(256)) * (slice_size * 40 // 256)  # 40 slices: ~4 s at 2 in flight
    big.write_bytes(data)
    env = cli_env(tmp_path, emulator)

    def received() -> list[int]:
        slices = emulator.activity()["slices"]
        return next(iter(slices.values()), []) if slices else []

    proc = _start(config, env, tmp_path)
    try:
        _wait(lambda: len(received()) >= 6, 30)
        t0 = time.monotonic()
        _stop(proc)  # SIGTERM: exits 0 within 10 s
        assert time.monotonic() - t0 < 10
        sent_before = sorted(received())
        assert len(sent_before) < 40  # it really stopped part-way
        emulator.clear_faults()
        proc = _start(config, env, tmp_path)
        _wait(lambda: "big.bin" in _uploaded(api), 30)
        everything = sorted(received())
        assert everything == list(range(1, 41))  # each slice exactly once: none sent twice
        assert len(emulator.activity()["slices"]) == 1  # the same upload session, resumed
        stored = remote_files(api, "/agent")["big.bin"]
        assert stored["etag"] == md5(data)
        _stop(proc)  # SIGTERM: exits 0 within 10 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _passes(config: Path) -> int:
    return _log(config).count("pass done:")


def _start_on(
    tmp_path: Path, emulator: Emulator, files: dict[str, str], **config: object
) -> tuple[subprocess.Popen[str], Path, Path]:
    """An agent on a root holding ``files``, once its startup pass has uploaded them."""
    root = tmp_path / "root"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    path = _config(tmp_path, root, **config)  # type: ignore[arg-type]
    proc = _start(path, cli_env(tmp_path, emulator), tmp_path)
    _wait(lambda: _passes(path) >= 1, 30)
    assert file_uploads(emulator) == len(files)
    return proc, root, path


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM: the agent must exit with status 0 within 10 s (killed if it does not)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _live(api: Api) -> set[str]:
    return set(remote_files(api, "/agent"))


def _trashed(api: Api) -> set[str]:
    return {i["filename"] for i in api.listing(folder_id(api, "/agent")) if i["trashed"]}


def _kept(api: Api) -> set[str]:
    """Files of /agent kept as versions (mirror deletions among them), by their path."""
    folder = folder_id(api, "/agent")
    for part in (CATALOG_DIR, "versions"):
        found = [i for i in api.listing(folder) if i["filename"] == part and not i["trashed"]]
        if not found:
            return set()
        folder = int(found[0]["fileId"])
    return {
        i["filename"]
        for i in api.listing(folder)
        if not i["trashed"] and any(not v["trashed"] for v in api.listing(int(i["fileId"])))
    }


def test_renaming_a_folder_of_100_files_sends_no_file_bytes(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    files = {f"photos/p{i:03d}.jpg": f"photo {i}" for i in range(100)}
    proc, root, config = _start_on(tmp_path, emulator, {**files, "notes/a.txt": "note"})
    try:
        received = emulator.activity()["counts"]["bytes_received"]
        before_c = sum(c.size for c in catalog_objects(emulator))
        before = _passes(config)
        (root / "photos").rename(root / "pictures")
        _wait(lambda: "pictures/p000.jpg" in _live(api), 20)
        _wait(lambda: _passes(config) > before, 10)
        catalogs = sum(c.size for c in catalog_objects(emulator))
        # no file bytes: only the root's catalogs
        assert emulator.activity()["counts"]["bytes_received"] == received + catalogs - before_c
        assert file_uploads(emulator) == 101
        assert_same_tree(api, "/agent", local_files(root), download=["pictures/p042.jpg"])
        top = {i["filename"] for i in api.listing(folder_id(api, "/agent")) if not i["trashed"]}
        assert top == {"pictures", "notes", CATALOG_DIR}  # the folder itself was renamed on 123pan
        assert "moved folder photos -> pictures" in _log(config)
    finally:
        _stop(proc)


def test_archive_mode_deletes_change_nothing_remote(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    proc, root, config = _start_on(tmp_path, emulator, {f"f{i}.txt": f"{i}" for i in range(3)})
    try:
        before = _passes(config)
        (root / "f0.txt").unlink()
        _wait(lambda: _passes(config) > before, 15)
        assert _live(api) == {"f0.txt", "f1.txt", "f2.txt"}
        assert not _trashed(api)
    finally:
        _stop(proc)


def test_mirror_mode_keeps_deletes_but_not_an_emptied_or_removed_root(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    files = {f"f{i}.txt": f"{i}" for i in range(4)}
    proc, root, config = _start_on(tmp_path, emulator, files, mode="mirror", max_deletes=10)
    try:
        (root / "f0.txt").unlink()
        _wait(lambda: _kept(api) == {"f0.txt"}, 15)  # kept as a version, not binned
        assert not _trashed(api)
        assert _live(api) == {"f1.txt", "f2.txt", "f3.txt"}

        def refusals() -> int:  # passes that found the root missing or empty
            return _log(config).count("missing, empty or not mounted")

        for i in (1, 2, 3):
            (root / f"f{i}.txt").unlink()  # the root is now empty
        _wait(lambda: refusals() == 1, 15)
        assert _live(api) == {"f1.txt", "f2.txt", "f3.txt"}

        root.rename(tmp_path / "elsewhere")  # the whole root disappears (inotify says nothing)
        _wait(lambda: "is gone (removed, moved or unmounted)" in _log(config), 10)
        # its pass fails (a root that was not read is no success) and trashes nothing
        _wait(lambda: f"{root} cannot be read (No such file or directory)" in _log(config), 15)
        time.sleep(QUIET + 0.5)
        assert _live(api) == {"f1.txt", "f2.txt", "f3.txt"}
        assert _kept(api) == {"f0.txt"} and not _trashed(api)

        (tmp_path / "elsewhere").rename(root)  # back, like a remount: watched again
        _wait(lambda: "watching it" in _log(config), 10)
        (root / "later.txt").write_text("after the remount")
        _wait(lambda: "later.txt" in _live(api), 15)
        assert proc.poll() is None  # still running
    finally:
        _stop(proc)


def test_a_root_holding_the_state_dir_sends_none_of_it_and_does_not_loop(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    """The agent writes its ledger, activity file and token in the state dir on every
    pass: inside a root, each write would be an event calling for another pass, and each
    pass would upload them (the token is a secret)."""
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.txt").write_text("mine")
    config = _config(tmp_path, root)
    config.write_text(
        config.read_text().replace(
            f"state_dir: {json.dumps(str(tmp_path / 'state'))}",
            f"state_dir: {json.dumps(str(root / 'appstate'))}",
        )
    )
    proc = _start(config, cli_env(tmp_path, emulator), tmp_path)
    try:
        _wait(lambda: _passes(config) >= 1, 20)  # the startup pass is over
        assert "docs/a.txt" in _uploaded(api)
        settled = _passes(config)
        time.sleep(4 * QUIET + 1)  # a loop would run a pass every quiet window
        assert _passes(config) == settled, _log(config)[-2000:]
        (root / "b.txt").write_text("later")
        _wait(lambda: "b.txt" in _uploaded(api), 15)
        assert set(_uploaded(api)) == {"docs/a.txt", "b.txt"}
        assert (root / "appstate" / "ledger.sqlite3").is_file()
    finally:
        _stop(proc)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _outage_agent(tmp_path: Path, api_port: int) -> tuple[subprocess.Popen[str], Path, Path]:
    """An agent whose 123pan (``api_port``) does not answer yet; full passes every 3 s."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "waiting.txt").write_text("sent once 123pan is back")
    config = _config(tmp_path, root)
    config.write_text(config.read_text() + "rescan_interval: 3s\n")
    env = cli_env(tmp_path, None) | {
        "PAN123_CLIENT_ID": "outage-client",
        "PAN123_CLIENT_SECRET": "outage-secret",
        "PAN123_API_BASE": f"http://127.0.0.1:{api_port}",
    }
    proc = _start(config, env, tmp_path)
    _wait(lambda: "connection failed" in _log(config), 20)
    return proc, root, config


def test_the_agent_rides_out_123pan_being_unreachable_and_catches_up(tmp_path: Path) -> None:
    """Started while 123pan cannot be reached, the agent keeps running (a failed pass is
    tried again) and uploads once it is back."""
    api_port, upload_port = _free_port(), _free_port()
    proc, _, config = _outage_agent(tmp_path, api_port)
    try:
        # the startup pass gives up after its retries (~15 s) and the agent carries on
        _wait(lambda: "the pass failed" in _log(config), 60)
        assert proc.poll() is None, _log(config)[-2000:]
        with Emulator.temporary(
            api_port=api_port,
            upload_port=upload_port,
            client_id="outage-client",
            client_secret="outage-secret",
            rate_limits="off",
            complete_pending_polls=0,
        ) as emu:
            api = Api(emu)
            try:
                _wait(lambda: "waiting.txt" in _uploaded(api), 60)
            finally:
                api.close()
            _stop(proc)
    finally:
        _stop(proc)


def test_sigterm_while_123pan_is_unreachable_stops_the_agent_at_once(tmp_path: Path) -> None:
    """A pass stuck retrying (with backoff) must not hold up a shutdown."""
    proc, _, config = _outage_agent(tmp_path, _free_port())
    try:
        t0 = time.monotonic()
        _stop(proc)
        assert time.monotonic() - t0 < 2
        assert "not retried: stopping" in _log(config)
    finally:
        _stop(proc)


@pytest.mark.parametrize("command", ["sync", "run"])
def test_refused_credentials_stop_with_status_3_and_say_what_to_check(
    emulator: Emulator, tmp_path: Path, command: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_text("a")
    env = cli_env(tmp_path, emulator) | {"PAN123_CLIENT_SECRET": "not-the-secret-42"}
    done = subprocess.run(
        [str(BIN), command, str(root)], env=env, capture_output=True, text=True, timeout=60
    )
    # 3, not 1: the systemd unit does not restart on it (RestartPreventExitStatus)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "refused the client ID or secret" in done.stderr
    assert "PAN123_CLIENT_SECRET" in done.stderr
    assert "Traceback" not in done.stderr
    assert "not-the-secret-42" not in done.stdout + done.stderr  # the secret is never shown
