"""sync.yaml validation: every problem reported at once, each naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from syncagent.config import load_config, validate
from syncagent.errors import ConfigError

SECRET = "s3cr3t-value-xyz"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    return folder


def _problems(raw: Any, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate(raw, env or {})
    return info.value.problems


def good(root: Path, **extra: Any) -> dict[str, Any]:
    return {"roots": [{"local": str(root), "remote": "/backup/docs"}], **extra}


MALFORMED: list[tuple[str, Any, str]] = [
    ("roots missing", {"roots": None}, "roots"),
    ("roots not a list", {"roots": "x"}, "roots"),
    ("root not a mapping", {"roots": ["x"]}, "roots[0]"),
    ("relative local", {"roots": [{"local": "rel/dir", "remote": "/r"}]}, "roots[0].local"),
    ("local missing", {"roots": [{"remote": "/r"}]}, "roots[0].local"),
    (
        "local not a folder",
        {"roots": [{"local": "/nonexistent/x", "remote": "/r"}]},
        "roots[0].local",
    ),
    ("remote relative", "REMOTE:backup", "roots[0].remote"),
    ("remote forbidden char", "REMOTE:/a:b", "roots[0].remote"),
    ("bad mode", "ROOT:mode=sideways", "roots[0].mode"),
    ("unknown root key", "ROOT:ignor=[]", "roots[0].ignor"),
    ("ignore wrong type", "ROOT:ignore=5", "roots[0].ignore"),
    ("unknown top key", {"extra": 1}, "extra"),
    ("workers wrong type", {"upload": {"workers": "many"}}, "upload.workers"),
    ("workers zero", {"upload": {"workers": 0}}, "upload.workers"),
    ("threshold too big", {"upload": {"single_threshold": "2GB"}}, "upload.single_threshold"),
    ("qps unknown", {"limits": {"qps": "gold"}}, "limits.qps"),
    (
        "override not positive",
        {"limits": {"overrides": {"api/v2/file/list": 0}}},
        "limits.overrides",
    ),
    ("bandwidth not a rate", {"limits": {"upload_bandwidth": "fast"}}, "limits.upload_bandwidth"),
    (
        "bandwidth timetable wrong",
        {"limits": {"download_bandwidth": "08:00,1M 25:00,off"}},
        "limits.download_bandwidth",
    ),
    ("quiet not a duration", {"stability": {"quiet": "soon"}}, "stability.quiet"),
    ("rescan negative", {"rescan_interval": -5}, "rescan_interval"),
    ("http to a public host", {"api_base": "http://example.com"}, "api_base"),
    ("not a URL", {"api_base": "ftp://x"}, "api_base"),
    ("log level", {"logging": {"level": "loud"}}, "logging.level"),
    ("state dir relative", {"state_dir": "state"}, "state_dir"),
    ("credentials half", {"credentials": {"client_id": "abc"}}, "credentials"),
    (
        "env var unset",
        {"credentials": {"client_id": "${NOPE_ID}", "client_secret": "x"}},
        "credentials.client_id",
    ),
    ("upload not a mapping", {"upload": [1, 2]}, "upload"),
]


@pytest.mark.parametrize(("name", "change", "key"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_each_malformed_config_names_its_key(root: Path, name: str, change: Any, key: str) -> None:
    if isinstance(change, str):
        raw = good(root)
        kind, _, spec = change.partition(":")
        if kind == "REMOTE":
            raw["roots"][0]["remote"] = spec
        else:
            k, _, v = spec.partition("=")
            raw["roots"][0][k] = yaml.safe_load(v)
    elif "roots" in change:
        raw = change
    else:
        raw = {**good(root), **change}
    problems = _problems(raw)
    assert any(p.startswith((f"{key}:", f"{key} ")) for p in problems), problems


def test_all_problems_are_reported_at_once(root: Path) -> None:
    raw = good(root, extra=1, upload={"workers": 0}, limits={"qps": "gold"}, logging={"level": "x"})
    problems = _problems(raw)
    keys = {p.split(":")[0] for p in problems}
    assert {"extra", "upload.workers", "limits.qps", "logging.level"} <= keys


def test_unknown_key_suggests_the_near_one(root: Path) -> None:
    problems = _problems(good(root, uplaod={}))
    assert any("did you mean 'upload'" in p for p in problems)


def test_secret_never_appears_in_errors(root: Path) -> None:
    raw = good(root, credentials={"client_id": "id", "client_secret": [SECRET]})
    with pytest.raises(ConfigError) as info:
        validate(raw, {})
    assert SECRET not in str(info.value)


def test_env_overrides_and_expansion(root: Path) -> None:
    raw = good(root, credentials={"client_id": "${MY_ID}", "client_secret": "from-file"})
    cfg = validate(
        raw,
        {
            "MY_ID": "abc",
            "PAN123_CLIENT_SECRET": SECRET,
            "PAN123_API_BASE": "http://127.0.0.1:8123",
        },
    )
    assert cfg.credentials is not None
    assert cfg.credentials.client_id == "abc"
    assert cfg.credentials.client_secret == SECRET
    assert SECRET not in repr(cfg)
    assert cfg.api_base == "http://127.0.0.1:8123"


def test_no_credentials_means_the_embedded_emulator(root: Path) -> None:
    cfg = validate(good(root), {})
    assert cfg.credentials is None
    assert cfg.roots[0].remote == "/backup/docs"
    assert cfg.single_threshold == 16 << 20


def test_sizes_and_durations(root: Path) -> None:
    cfg = validate(
        good(
            root,
            upload={"single_threshold": "8MiB"},
            stability={"quiet": "500ms", "min_age": "2m"},
            rescan_interval="1h",
        ),
        {},
    )
    assert cfg.single_threshold == 8 << 20
    assert cfg.stability_seconds == 0.5
    assert cfg.min_age == 120
    assert cfg.rescan_interval == 3600


def test_secrets_file(root: Path, tmp_path: Path) -> None:
    secrets = tmp_path / "pan123.yaml"
    secrets.write_text(f"client_id: fid\nclient_secret: {SECRET}\n")
    cfg = validate(good(root, credentials={"secrets_file": str(secrets)}), {})
    assert cfg.credentials is not None and cfg.credentials.client_secret == SECRET


def test_bad_yaml_is_reported_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "sync.yaml"
    path.write_text("roots:\n  - local: /x\n    remote: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert "not valid YAML at line" in str(info.value)


def test_example_file_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "sync.yaml.example"
    text = example.read_text().replace("/home/me/Documents", str(tmp_path))
    cfg_path = tmp_path / "sync.yaml"
    cfg_path.write_text(text)
    cfg = load_config(cfg_path, {"PAN123_CLIENT_ID": "a", "PAN123_CLIENT_SECRET": "b"})
    assert cfg.roots[0].local == tmp_path


def test_monitoring_is_loopback_only(root: Path) -> None:
    problems = _problems(good(root, monitoring={"port": 70000, "host": "0.0.0.0"}))
    keys = {p.split(":")[0] for p in problems}
    assert keys == {"monitoring.port", "monitoring.host"}
    cfg = validate(good(root, monitoring={"port": 9877}), {})
    assert (cfg.monitor_port, cfg.monitor_host) == (9877, "127.0.0.1")


def test_remote_check_defaults_off_and_every_bad_key_at_once(root: Path) -> None:
    config = validate(good(root), {})
    assert (config.remote_check_interval, config.remote_check_files) == (900.0, 1000)
    assert validate(good(root, remote_check={"interval": False}), {}).remote_check_interval == 0
    assert validate(good(root, remote_check={"interval": "2m"}), {}).remote_check_interval == 120
    problems = _problems(good(root, remote_check={"interval": "often", "files": 0, "sample": 3}))
    assert [p.split(":")[0] for p in problems] == [
        "remote_check.sample",
        "remote_check.interval",
        "remote_check.files",
    ]


# -- roots that share files, links, and keys that were silently ignored (issues 9 and 11) ----


def _roots(*pairs: tuple[Path | str, str]) -> dict[str, Any]:
    return {"roots": [{"local": str(local), "remote": remote} for local, remote in pairs]}


def test_nested_local_roots_are_refused_either_way(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    inner_second = _problems(_roots((tmp_path / "a", "/x"), (tmp_path / "a" / "b", "/y")))
    assert len(inner_second) == 1 and inner_second[0].startswith("roots[1].local: "), inner_second
    assert "overlap" in inner_second[0] and "backed up twice" in inner_second[0]
    inner_first = _problems(_roots((tmp_path / "a" / "b", "/y"), (tmp_path / "a", "/x")))
    assert len(inner_first) == 1 and "the folder of roots[0] is inside" in inner_first[0]


def test_a_root_nested_through_a_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "shortcut").symlink_to(tmp_path / "a" / "b")
    problems = _problems(_roots((tmp_path / "a", "/x"), (tmp_path / "shortcut", "/y")))
    assert [p.split(":")[0] for p in problems] == ["roots[1].local"], problems


def test_two_roots_on_one_remote_folder_or_nested_remotes_are_refused(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    problems = _problems(
        _roots(
            (tmp_path / "a", "/backup/docs"),
            (tmp_path / "b", "/backup/docs/"),  # the same folder, spelt differently
            (tmp_path / "c", "/backup/docs/old"),
        )
    )
    assert [p.split(":")[0] for p in problems] == [
        "roots[1].remote",
        "roots[2].remote",
        "roots[2].remote",
    ], problems
    assert "overwrite each other's files" in problems[0]


def test_neighbours_with_a_common_prefix_do_not_overlap(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs2").mkdir()
    cfg = validate(_roots((tmp_path / "docs", "/b/docs"), (tmp_path / "docs2", "/b/docs2")), {})
    assert len(cfg.roots) == 2


def test_folders_given_on_the_command_line_must_not_overlap(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "other" / "a").mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        validate(None, {}, cli_paths=[str(tmp_path / "a"), str(tmp_path / "a" / "b")])
    assert [p.split(":")[0] for p in info.value.problems] == ["folder 2.local"]
    with pytest.raises(ConfigError) as info:  # both would go to /syncagent/a
        validate(None, {}, cli_paths=[str(tmp_path / "a"), str(tmp_path / "other" / "a")])
    assert [p.split(":")[0] for p in info.value.problems] == ["folder 2.remote"]


def test_a_root_that_is_a_link_is_backed_up_as_its_folder_and_said_so(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    cfg = validate(_roots((tmp_path / "link", "/b")), {})
    assert cfg.roots[0].local == tmp_path / "real"
    assert cfg.notices == (
        f"roots[0].local: {tmp_path / 'link'} is a symbolic link; backing up the folder it "
        f"points to, {tmp_path / 'real'}",
    )
    assert validate(_roots((tmp_path / "real", "/b")), {}).notices == ()
    given = validate(None, {}, cli_paths=[str(tmp_path / "link")])  # `syncagent sync link`
    assert given.roots[0].local == tmp_path / "real"
    assert given.notices[0].startswith(f"folder 1: {tmp_path / 'link'} is a symbolic link")


def test_bandwidth_limits_default_to_none_and_read_rates_and_timetables(root: Path) -> None:
    plain = validate(good(root), {})
    assert not plain.upload_bandwidth.limited and not plain.download_bandwidth.limited
    cfg = validate(
        good(root, limits={"upload_bandwidth": "08:00,1M 23:00,off", "download_bandwidth": "5M"}),
        {},
    )
    assert [s.rate for s in cfg.upload_bandwidth.slots] == [1_000_000, 0]
    assert cfg.download_bandwidth.slots[0].rate == 5_000_000
    # YAML 1.1 reads a bare `off` as false: no limit, not an error
    assert not validate(good(root, limits={"upload_bandwidth": False}), {}).upload_bandwidth.limited


def test_qps_override_keys_must_be_endpoints(root: Path) -> None:
    problems = _problems(good(root, limits={"overrides": {"api/v2/file/lst": 3, "upload": 1}}))
    assert problems[0] == (
        "limits.overrides.api/v2/file/lst: unknown endpoint (did you mean 'api/v2/file/list'?)"
    )
    assert problems[1].startswith("limits.overrides.upload: unknown endpoint")
    cfg = validate(good(root, limits={"overrides": {"/api/v2/file/list": 3}}), {})
    assert dict(cfg.qps_overrides) == {"api/v2/file/list": 3.0}  # a leading / is fine


@pytest.mark.parametrize("interval", [0, "0s", 0.2, "500ms"])
def test_rescan_interval_under_a_second_is_refused(root: Path, interval: Any) -> None:
    problems = _problems(good(root, rescan_interval=interval))
    assert problems == [
        f"rescan_interval: must be a duration of at least 1s (e.g. 1h), not {interval!r}"
    ]


def test_the_log_file_folder_must_exist(root: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "agent.log"
    assert _problems(good(root, logging={"file": str(missing)})) == [
        f"logging.file: the folder {missing.parent} does not exist"
    ]
    assert _problems(good(root, logging={"file": "agent.log"}))[0].startswith(
        "logging.file: must be an absolute path"
    )
    cfg = validate(good(root, logging={"file": str(tmp_path / "agent.log")}), {})
    assert cfg.log_file == tmp_path / "agent.log"


def test_invalid_ignore_patterns_in_the_config_are_named(root: Path) -> None:
    raw = good(root)
    raw["roots"][0]["ignore"] = ["*.iso", "!", "cache/", "a\\"]
    problems = _problems(raw)
    assert [p.split(":")[0] for p in problems] == ["roots[0].ignore[1]", "roots[0].ignore[3]"]
    assert "invalid pattern '!'" in problems[0]


def test_files_holding_credentials_are_own_paths(root: Path, tmp_path: Path) -> None:
    """Never backed up: the config in use, the secrets file, the service's environment file
    and systemd's credentials folder; the ledger URL (it may hold a password) is in no repr."""
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("client_id: id\nclient_secret: s3cret-xyz\n")
    path = tmp_path / "sync.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "roots": [{"local": str(root), "remote": "/r"}],
                "credentials": {"secrets_file": str(secrets)},
                "ledger": {"url": "postgresql://u:db-pass-1@localhost/l"},
            }
        )
    )
    env = {
        "SYNCAGENT_ENVIRONMENT_FILE": "/etc/syncagent/credentials",
        "CREDENTIALS_DIRECTORY": "/run/c",
    }
    config = load_config(path, env)
    own = set(config.own_paths)
    assert {path, secrets, Path("/etc/syncagent/credentials"), Path("/run/c")} <= own
    assert "s3cret-xyz" not in repr(config) and "db-pass-1" not in repr(config)


def test_guard_settings_have_defaults_and_every_wrong_key_is_named(root: Path) -> None:
    cfg = validate(good(root), {})
    assert (cfg.guard.enabled, cfg.guard.max_changed, cfg.guard.min_files) == (True, 0.5, 20)
    cfg = validate(good(root, guard={"max_changed": "30%", "min_files": 5}), {})
    assert (cfg.guard.max_changed, cfg.guard.min_files) == (0.3, 5)
    assert validate(good(root, guard={"enabled": False}), {}).guard.enabled is False
    bad = {"max_changed": 1.5, "min_files": 0, "enabled": "maybe", "max_change": 1}
    keys = {p.split(":")[0] for p in _problems(good(root, guard=bad))}
    assert keys == {"guard.max_changed", "guard.min_files", "guard.enabled", "guard.max_change"}


def test_a_root_may_override_guard_settings_key_by_key(root: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    raw: dict[str, Any] = {
        "roots": [
            {"local": str(root), "remote": "/backup/docs", "guard": {"max_changed": "90%"}},
            {"local": str(other), "remote": "/backup/other"},
            {"local": str(tmp_path), "remote": "/backup/t", "guard": {"enabled": False}},
        ],
        "guard": {"max_changed": 0.3, "min_files": 7},
    }
    raw["roots"][2]["local"] = str(tmp_path / "third")
    (tmp_path / "third").mkdir()
    cfg = validate(raw, {})
    first, second, third = (cfg.guard_for(r) for r in cfg.roots)
    assert (first.enabled, first.max_changed, first.min_files) == (True, 0.9, 7)
    assert second == cfg.guard and (second.max_changed, second.min_files) == (0.3, 7)
    assert (third.enabled, third.max_changed, third.min_files) == (False, 0.3, 7)


def test_a_roots_guard_settings_are_validated_under_its_key(root: Path) -> None:
    bad = {"max_changed": 0, "min_files": -1, "enabled": "yes", "min_file": 3}
    raw = {"roots": [{"local": str(root), "remote": "/backup/docs", "guard": bad}]}
    keys = {p.split(":")[0] for p in _problems(raw)}
    assert keys == {
        "roots[0].guard.max_changed",
        "roots[0].guard.min_files",
        "roots[0].guard.enabled",
        "roots[0].guard.min_file",
    }
    assert {
        p.split(":")[0] for p in _problems({**raw, "roots": [{**raw["roots"][0], "guard": 5}]})
    } == {"roots[0].guard"}


def test_ledger_wait_is_a_duration(root: Path) -> None:
    assert validate(good(root), {}).ledger_wait == 60.0
    assert validate(good(root, ledger={"wait": "2s"}), {}).ledger_wait == 2.0
    assert validate(good(root, ledger={"wait": "5m"}), {}).ledger_wait == 300.0
    assert any("ledger.wait" in p for p in _problems(good(root, ledger={"wait": "soon"})))
