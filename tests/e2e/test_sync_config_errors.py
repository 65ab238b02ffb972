"""Malformed sync.yaml files: ``syncagent sync`` and ``syncagent status`` exit 2 with a message on
stderr naming the key at fault, and never a traceback.

The installed CLI runs in a subprocess with HOME in the test's tmp dir and no PAN123_* variable
(nothing may reach a network: a config error stops the command before anything is opened).
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_sync_cli import BIN, cli_env

# (id, sync.yaml text, what stderr must name). {root} is an existing folder, {tmp} the test's
# tmp dir; everything not under test is valid.
GOOD_ROOT = "roots:\n  - local: {root}\n    remote: /backup/docs\n"
STATE = "state_dir: {tmp}/state\n"
CASES: list[tuple[str, str, str]] = [
    ("bad yaml", "roots: [\n  - local: {root}\n", "not valid YAML at line"),
    ("top level is a list", "- {root}\n", "(top level): must be a mapping"),
    ("empty file", "", "roots: is missing"),
    ("unknown top key", GOOD_ROOT + STATE + "rootz: []\n", "rootz: unknown key"),
    ("missing roots", STATE + "upload: {{workers: 2}}\n", "roots: is missing"),
    ("roots empty", "roots: []\n" + STATE, "roots: must be a non-empty list"),
    ("root a string", "roots:\n  - {root}\n" + STATE, "roots[0]: must be a mapping"),
    ("root without local", "roots:\n  - remote: /b\n" + STATE, "roots[0].local: is required"),
    (
        "relative local",
        "roots:\n  - local: docs\n    remote: /b\n" + STATE,
        "roots[0].local: must be an absolute path",
    ),
    (
        "missing local folder",
        "roots:\n  - local: {tmp}/nowhere\n    remote: /b\n" + STATE,
        "roots[0].local: {tmp}/nowhere is not an existing folder",
    ),
    (
        "relative remote",
        "roots:\n  - local: {root}\n    remote: backup\n" + STATE,
        "roots[0].remote: must be an absolute remote path",
    ),
    (
        "forbidden character in remote",
        "roots:\n  - local: {root}\n    remote: /back|up\n" + STATE,
        "roots[0].remote",
    ),
    ("bad mode", GOOD_ROOT + "    mode: sync\n" + STATE, "roots[0].mode: must be one of"),
    (
        "unknown root key",
        GOOD_ROOT + "    exclude: ['*.tmp']\n" + STATE,
        "roots[0].exclude: unknown key",
    ),
    (
        "root listed twice",
        GOOD_ROOT + "  - local: {root}\n    remote: /other\n" + STATE,
        "roots[1].local: {root} is listed twice",
    ),
    ("workers a word", GOOD_ROOT + STATE + "upload: {{workers: four}}\n", "upload.workers"),
    (
        "threshold not a size",
        GOOD_ROOT + STATE + "upload: {{single_threshold: big}}\n",
        "upload.single_threshold",
    ),
    ("bad names policy", GOOD_ROOT + STATE + "upload: {{names: drop}}\n", "upload.names"),
    ("quiet not a duration", GOOD_ROOT + STATE + "stability: {{quiet: soon}}\n", "quiet"),
    ("bad qps", GOOD_ROOT + STATE + "limits: {{qps: gold}}\n", "limits.qps"),
    ("relative state_dir", GOOD_ROOT + "state_dir: state\n", "state_dir: must be an absolute"),
    ("ledger url a number", GOOD_ROOT + STATE + "ledger: {{url: 5}}\n", "ledger.url"),
    ("bad log level", GOOD_ROOT + STATE + "logging: {{level: loud}}\n", "logging.level"),
    (
        "http api_base off loopback",
        GOOD_ROOT + STATE + "api_base: http://open-api.example.com\n",
        "api_base: plain http is allowed only for loopback",
    ),
    (
        "client_id without secret",
        GOOD_ROOT + STATE + "credentials: {{client_id: abc}}\n",
        "credentials: client_id and client_secret must be given together",
    ),
    (
        "root inside another root",
        GOOD_ROOT + "  - local: {root}/inner\n    remote: /other\n" + STATE,
        "roots[1].local: {root}/inner and {root} (roots[0].local) overlap",
    ),
    (
        "two roots on one remote folder",
        GOOD_ROOT + "  - local: {tmp}\n    remote: /backup/docs\n" + STATE,
        "roots[1].remote: /backup/docs is also the remote folder of roots[0]",
    ),
    (
        "remote folder inside another root's",
        GOOD_ROOT + "  - local: {tmp}/other\n    remote: /backup/docs/old\n" + STATE,
        "roots[1].remote: /backup/docs/old and /backup/docs (roots[0].remote) overlap",
    ),
    (
        "unknown QPS override endpoint",
        GOOD_ROOT + STATE + "limits: {{overrides: {{api/v2/file/lst: 3}}}}\n",
        "limits.overrides.api/v2/file/lst: unknown endpoint (did you mean 'api/v2/file/list'?)",
    ),
    (
        "rescan interval zero",
        GOOD_ROOT + STATE + "rescan_interval: 0\n",
        "rescan_interval: must be a duration of at least 1s",
    ),
    (
        "unset environment variable",
        "roots:\n  - local: ${{SYNCAGENT_TEST_UNSET}}\n    remote: /b\n" + STATE,
        "roots[0].local: environment variable SYNCAGENT_TEST_UNSET is not set",
    ),
]


# Cases whose config is also given to `syncagent status` (every CLI start costs about a second
# of CPU here, so not all of them).
STATUS_CASES = (
    "bad yaml",
    "unknown top key",
    "missing roots",
    "relative local",
    "http api_base off loopback",
)


def _write(tmp_path: Path, text: str) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    (root / "inner").mkdir(exist_ok=True)  # for the overlapping-roots cases
    config = tmp_path / "sync.yaml"
    config.write_text(text.format(root=root, tmp=tmp_path), encoding="utf-8")
    return config, {"root": str(root), "tmp": str(tmp_path)}


def _run(
    tmp_path: Path, argv: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *argv],
        env=env or cli_env(tmp_path, None),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=120,
        check=False,
    )


def _assert_config_error(r: subprocess.CompletedProcess[str], names: str) -> None:
    assert r.returncode == 2, (r.args, r.returncode, r.stdout, r.stderr)
    assert names in r.stderr, (names, r.stderr)
    assert r.stderr.startswith("syncagent: "), r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    assert r.stdout == "", r.stdout


@dataclass
class Outcome:
    tmp: Path
    names: str  # what stderr must name, with {root} and {tmp} filled in
    runs: dict[str, subprocess.CompletedProcess[str]]  # "sync"/"status" -> result


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case run at once, a few processes at a time."""
    jobs: list[tuple[str, str, Path, list[str]]] = []
    found: dict[str, Outcome] = {}
    for case_id, text, names in CASES:
        tmp = tmp_path_factory.mktemp("config")
        config, values = _write(tmp, text)
        found[case_id] = Outcome(tmp, names.format(**values), {})
        for command in ("sync", "status") if case_id in STATUS_CASES else ("sync",):
            jobs.append((case_id, command, tmp, [command, "--config", str(config)]))
    with ThreadPoolExecutor(4) as pool:
        results = pool.map(lambda job: _run(job[2], job[3]), jobs)
        for (case_id, command, _, _), result in zip(jobs, results, strict=True):
            found[case_id].runs[command] = result
    return found


def test_there_are_at_least_fifteen_cases() -> None:
    assert len(CASES) >= 15
    assert len({case[0] for case in CASES}) == len(CASES)
    assert set(STATUS_CASES) <= {case[0] for case in CASES}


@pytest.mark.slow  # its fixture starts the CLI about 30 times
@pytest.mark.parametrize("case_id", [c[0] for c in CASES])
def test_malformed_config_exits_2_naming_the_key(
    outcomes: dict[str, Outcome], case_id: str
) -> None:
    outcome = outcomes[case_id]
    assert set(outcome.runs) == ({"sync", "status"} if case_id in STATUS_CASES else {"sync"})
    for result in outcome.runs.values():
        _assert_config_error(result, outcome.names)
    # Nothing was created: no ledger, no state dir, nothing in HOME.
    assert sorted(p.name for p in outcome.tmp.iterdir()) == ["root", "sync.yaml"]


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    config, _ = _write(
        tmp_path,
        GOOD_ROOT
        + "    mode: sync\n"
        + "state_dir: relative\n"
        + "upload: {{workers: 0, names: drop}}\n"
        + "colour: blue\n",
    )
    sync = _run(tmp_path, ["sync", "--config", str(config)])
    for key in ("roots[0].mode", "state_dir", "upload.workers", "upload.names", "colour"):
        _assert_config_error(sync, f"  - {key}: ")


def test_secret_is_never_echoed(tmp_path: Path) -> None:
    config, _ = _write(
        tmp_path, GOOD_ROOT + STATE + "credentials: {{client_id: abc, client_secret: [s3cr3t]}}\n"
    )
    sync = _run(tmp_path, ["sync", "--config", str(config)])
    _assert_config_error(sync, "credentials.client_secret: must be a non-empty string")
    assert "s3cr3t" not in sync.stderr


def test_unknown_config_path_and_bad_environment(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "sync.yaml"
    sync = _run(tmp_path, ["sync", "--config", str(missing)])
    status = _run(tmp_path, ["status", "--config", str(missing)])
    _assert_config_error(sync, f"{missing}: cannot read")
    _assert_config_error(status, f"{missing}: cannot read")

    # PAN123_API_BASE overrides the file and is checked like it.
    config, _ = _write(tmp_path, GOOD_ROOT + STATE)
    env = cli_env(tmp_path, None) | {"PAN123_API_BASE": "http://10.1.2.3:8123"}
    r = _run(tmp_path, ["sync", "--config", str(config)], env)
    _assert_config_error(r, "api_base: plain http is allowed only for loopback")


def test_non_utf8_config_file(tmp_path: Path) -> None:
    config = tmp_path / "sync.yaml"
    config.write_bytes(b"roots:\n  - local: /caf\xe9\n")
    sync = _run(tmp_path, ["sync", "--config", str(config)])
    _assert_config_error(sync, f"{config}: not UTF-8 text")


def test_a_folder_whose_path_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    """123pan and the ledger store UTF-8 only: a root whose own path has other bytes is
    refused up front (files with such names inside a root are skipped one by one)."""
    bad = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.mkdir(bad)
    folder = os.fsdecode(bad)
    for command in ("sync", "run"):
        result = _run(tmp_path, [command, folder])
        _assert_config_error(result, "caf\\xe9 is not valid UTF-8")
