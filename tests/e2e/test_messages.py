"""Messages a person can act on, from the installed CLI: a connection failure names the host
and port and what to check; `emulator` on a busy port names the port; `verify` says of each
file what is wrong in plain words; credentials appear only as a fingerprint."""

from __future__ import annotations

import hashlib
import socket
import subprocess
from pathlib import Path

from conftest import Api
from test_sync_cli import BIN, cli_env, folder_id, make_cli

from syncagent.emulator import Emulator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_connection_failure_names_host_and_port(tmp_path: Path, emulator: Emulator) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    cli = make_cli(tmp_path, emulator, [(root, "/b")])
    port = _free_port()  # nothing listens there
    cli.env["PAN123_API_BASE"] = f"http://127.0.0.1:{port}"
    result = cli.run("doctor", "--config", str(cli.config), timeout=180)
    assert result.returncode == 1
    assert f"could not reach 127.0.0.1:{port}" in result.stdout, result.stdout
    assert "api_base" in result.stdout


def test_emulator_on_a_busy_port_names_the_port(tmp_path: Path, emulator: Emulator) -> None:
    busy = int(emulator.api_url.rsplit(":", 1)[1])
    result = subprocess.run(
        [str(BIN), "emulator", "--port", str(busy), "--data-dir", str(tmp_path / "pan")],
        env=cli_env(tmp_path, None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"127.0.0.1:{busy} (the API port)" in result.stderr, result.stderr
    assert f"port {busy} is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_says_which_file_and_what_it_means(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "gone.txt").write_text("deleted in the web app")
    (root / "kept.txt").write_text("still there")
    cli = make_cli(tmp_path, emulator, [(root, "/backup/docs")])
    assert cli.sync().returncode == 0
    [gone] = [i for i in api.listing(folder_id(api, "/backup/docs")) if i["filename"] == "gone.txt"]
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [gone["fileId"]]}))
    result = cli.run("verify", "--config", str(cli.config))
    assert result.returncode == 1
    [line] = [x for x in result.stdout.splitlines() if "gone.txt" in x]
    assert line.startswith(f"{root}/gone.txt: NOT on 123pan: ")
    assert "/backup/docs/gone.txt" in line and "recycle bin" in line
    assert "`syncagent verify --repair` then `syncagent sync`" in line
    assert "kept.txt" not in result.stdout


def test_doctor_shows_credentials_only_as_a_fingerprint(tmp_path: Path, emulator: Emulator) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    cli = make_cli(tmp_path, emulator, [(root, "/b")])
    result = cli.run("doctor", "--config", str(cli.config), "-vv", timeout=180)
    output = result.stdout + result.stderr
    client_id, secret = emulator.client_id, emulator.client_secret
    assert client_id not in output and secret not in output
    digest = hashlib.sha256(client_id.encode()).hexdigest()[:8]
    assert f"client ID {digest}…" in result.stdout, result.stdout


def test_a_wrong_secret_is_noticed_while_the_cached_token_is_valid(
    tmp_path: Path, emulator: Emulator
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("a")
    cli = make_cli(tmp_path, emulator, [(root, "/b")])
    assert cli.sync().returncode == 0  # a token is cached, valid for 30 days
    (root / "b.txt").write_text("b")
    cli.env["PAN123_CLIENT_SECRET"] = "not-the-secret"
    wrong = cli.sync()
    assert wrong.returncode == 3, wrong.stderr  # refused credentials, not a backup
    assert "not-the-secret" not in wrong.stderr + wrong.stdout


def test_verify_stopped_by_123pan_says_what_it_means(tmp_path: Path, emulator: Emulator) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("a")
    cli = make_cli(tmp_path, emulator, [(root, "/b")])
    assert cli.sync().returncode == 0
    cli.env["PAN123_CLIENT_SECRET"] = "not-the-secret"
    result = cli.run("verify", "--config", str(cli.config))
    assert result.returncode == 3, result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("syncagent: verify stopped")]
    # what it means and what to do first, 123pan's own words after, in brackets
    assert "while comparing with 123pan [123pan said: " in line, line
    assert line.index("client") < line.index("[123pan said"), line
    assert "not-the-secret" not in result.stderr


def test_verify_names_a_root_it_could_not_list_and_goes_on(
    tmp_path: Path, emulator: Emulator
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("a")
    cli = make_cli(tmp_path, emulator, [(root, "/b")])
    assert cli.sync().returncode == 0
    emulator.fail_next("api/v2/file/list", None, code=9999, message="some 123pan words")
    result = cli.run("verify", "--config", str(cli.config))
    assert result.returncode == 1, result.stderr
    assert (
        f"{root}: not checked: 123pan refused the request while listing /b "
        "[123pan said: some 123pan words [api/v2/file/list, code 9999" in result.stdout
    ), result.stdout
