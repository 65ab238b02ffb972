"""HTTPS and proxies, as a user runs them: ``syncagent sync`` against the emulator over
``--tls`` (certificate checking on), with and without its CA in ``REQUESTS_CA_BUNDLE``, and
through a local CONNECT proxy named by ``HTTPS_PROXY`` (``NO_PROXY`` honoured). The embedded
emulator is never reached through a proxy."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Api
from connect_proxy import ConnectProxy
from test_emulator_cli import running
from test_sync_cli import BIN, cli_env, local_files, make_cli, remote_files

from syncagent.emulator import Emulator


@pytest.fixture
def tls_emulator() -> Iterator[Emulator]:
    with Emulator.temporary(rate_limits="off", complete_pending_polls=0, tls=True) as emu:
        yield emu


@pytest.fixture
def tls_api(tls_emulator: Emulator) -> Iterator[Api]:
    api = Api(tls_emulator)
    api.http.trust_env = False  # else REQUESTS_CA_BUNDLE would override verify
    api.http.verify = str(tls_emulator.ca_path)
    yield api
    api.close()


def _root(tmp: Path) -> Path:
    root = tmp / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("over https\n")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)) * 2000)  # > 256 KiB: chunked
    return root


def test_backs_up_over_https_with_the_emulators_ca(
    tls_emulator: Emulator, tls_api: Api, tmp_path: Path
) -> None:
    assert tls_emulator.api_url.startswith("https://") and tls_emulator.ca_path is not None
    root = _root(tmp_path)
    cli = make_cli(tmp_path, tls_emulator, [(root, "/tls")])
    cli.env["REQUESTS_CA_BUNDLE"] = str(tls_emulator.ca_path)
    done = cli.sync()
    assert done.returncode == 0, done.stderr[-3000:]
    remote = remote_files(tls_api, "/tls")
    assert sorted(remote) == sorted(local_files(root))
    assert (
        tls_api.download(int(remote["sub/b.bin"]["fileId"]))
        == (root / "sub" / "b.bin").read_bytes()
    )


def test_refuses_the_same_server_without_its_ca(tls_emulator: Emulator, tmp_path: Path) -> None:
    cli = make_cli(tmp_path, tls_emulator, [(_root(tmp_path), "/tls")])
    cli.env.pop("CURL_CA_BUNDLE", None)  # the system's CAs only
    cli.env["REQUESTS_CA_BUNDLE"] = "/etc/ssl/certs/ca-certificates.crt"
    t0 = time.monotonic()
    done = cli.sync()
    assert done.returncode == 1, done.stderr[-3000:]
    assert "certificate verify failed" in done.stderr, done.stderr[-3000:]
    assert "REQUESTS_CA_BUNDLE" in done.stderr  # what to do about it
    assert "Traceback" not in done.stderr
    assert time.monotonic() - t0 < 30  # not retried as if the network were down
    assert tls_emulator.activity()["endpoints"] == {}  # no request got through


def test_https_goes_through_the_proxy_in_https_proxy_unless_no_proxy(
    tls_emulator: Emulator, tls_api: Api, tmp_path: Path
) -> None:
    root = _root(tmp_path)
    cli = make_cli(tmp_path, tls_emulator, [(root, "/tls")])
    cli.env["REQUESTS_CA_BUNDLE"] = str(tls_emulator.ca_path)
    api_host = tls_emulator.api_url.removeprefix("https://")
    upload_host = tls_emulator.upload_url.removeprefix("https://")
    with ConnectProxy() as proxy:
        done = cli.sync()
        assert done.returncode == 0, done.stderr[-3000:]
        assert proxy.requests == {}  # no proxy in the environment: none used
        cli.env["HTTPS_PROXY"] = proxy.url
        (root / "c.txt").write_text("through the proxy\n")
        done = cli.sync()
        assert done.returncode == 0, done.stderr[-3000:]
        seen = proxy.requests
        assert seen[f"CONNECT {api_host}"] >= 1 and seen[f"CONNECT {upload_host}"] >= 1, seen
        assert set(seen) == {f"CONNECT {api_host}", f"CONNECT {upload_host}"}, seen
        assert "c.txt" in remote_files(tls_api, "/tls")
        # NO_PROXY: the same hosts are reached directly
        cli.env["NO_PROXY"] = "127.0.0.1"
        (root / "d.txt").write_text("not through the proxy\n")
        done = cli.sync()
        assert done.returncode == 0, done.stderr[-3000:]
        assert proxy.requests == seen
        assert "d.txt" in remote_files(tls_api, "/tls")


def test_the_embedded_emulator_is_never_reached_through_a_proxy(tmp_path: Path) -> None:
    root = _root(tmp_path)
    with ConnectProxy() as proxy:
        env = cli_env(tmp_path, None) | {
            "HTTP_PROXY": proxy.url,
            "HTTPS_PROXY": proxy.url,
            "ALL_PROXY": proxy.url,
        }
        done = subprocess.run(
            [str(BIN), "sync", str(root)], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "2 uploaded" in done.stdout
        assert proxy.requests == {}


def test_the_emulator_command_serves_tls_and_prints_its_ca(tmp_path: Path) -> None:
    import requests

    cmd = [str(BIN), "emulator", "--tls", "--port", "0", "--data-dir", str(tmp_path)]
    with running(*cmd) as (proc, info):
        assert info["API base URL"].startswith("https://")
        ca = info["TLS CA"]
        assert ca == str(tmp_path / "tls" / "ca.pem")
        r = requests.get(
            f"{info['API base URL']}/__emulator/state",
            headers={"X-Emulator-Admin": info["admin token"]},
            verify=ca,
            timeout=10,
        )
        assert r.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{info['API base URL']}/__emulator/state", verify=True, timeout=10)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
