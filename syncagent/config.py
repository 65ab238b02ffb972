"""``sync.yaml``: load, expand ``${ENV}``, validate every key, and return a frozen SyncConfig.

One pipeline: YAML text → ``${VAR}`` substitution → environment overrides
(``PAN123_CLIENT_ID``, ``PAN123_CLIENT_SECRET``, ``PAN123_API_BASE``,
``SYNCAGENT_MONITOR_PORT``) → validation that collects every problem, each named by its key
path (``roots[1].local``), into one :class:`~syncagent.errors.ConfigError`. Nothing downstream
sees raw dicts. The client secret is never part of a repr or an error message.

Reading the file and the environment happens in :func:`load_config`; :func:`validate` is pure.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
import yaml

from syncagent.bwlimit import UNLIMITED, Timetable, parse_bandwidth
from syncagent.errors import ConfigError
from syncagent.guard import GuardSettings

__all__ = ["Credentials", "RootConfig", "SyncConfig", "load_config", "validate"]

MONITOR_PORT_ENV = "SYNCAGENT_MONITOR_PORT"
DEFAULT_API_BASE = "https://open-api.123pan.com"
_FORBIDDEN = set('"\\:*?|><')
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
# Set by the systemd unit: the EnvironmentFile that holds PAN123_CLIENT_SECRET, and the
# folder of LoadCredential= files; both are never backed up.
_SECRET_ENV = ("SYNCAGENT_ENVIRONMENT_FILE", "CREDENTIALS_DIRECTORY")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "ki": 1024,
    "m": 10**6,
    "mb": 10**6,
    "mib": 1 << 20,
    "mi": 1 << 20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 1 << 30,
    "gi": 1 << 30,
    "t": 10**12,
    "tb": 10**12,
    "tib": 1 << 40,
    "ti": 1 << 40,
}
MIN_RESCAN_INTERVAL = 1.0  # seconds; 0 made the watch agent rescan every 0.2 s
_SECONDS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

Mode = Literal["archive", "mirror", "move"]


@dataclass(frozen=True)
class RootConfig:
    """A local folder and the remote folder it is backed up to."""

    local: Path
    remote: str
    mode: Mode = "archive"
    ignore: tuple[str, ...] = ()
    watch: Literal["auto", "poll"] = "auto"
    poll_interval: float = 30.0
    max_deletes: int = 100  # mirror mode: refuse a pass that would trash more than this
    versions: bool = True  # keep a changed file's previous remote copy (False: plain replace)
    versions_keep: int | None = None  # retention: newest N versions per file
    versions_keep_days: float | None = None  # retention: versions superseded within N days
    guard: GuardSettings | None = None  # the root's own guard settings (None: the top level's)
    shared_remote: bool = False  # fleet: every host backs up into `remote` itself (no /<host>)


@dataclass(frozen=True)
class Credentials:
    """The 123pan client ID and secret; shown only as :attr:`fingerprint` (a repr, a log
    line or ``doctor`` never prints either)."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """Tells two sets of credentials apart without showing them: the first 8 hex digits
        of each one's SHA-256 (``sha256sum`` of the value, without a newline, shows it too)."""
        return f"client ID {_digest(self.client_id)}…, secret {_digest(self.client_secret)}…"

    def __repr__(self) -> str:
        return f"Credentials({self.fingerprint})"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class SyncConfig:
    """Everything the agent needs, checked. ``credentials`` None = the embedded emulator."""

    roots: tuple[RootConfig, ...]
    credentials: Credentials | None
    state_dir: Path
    api_base: str = DEFAULT_API_BASE
    workers: int = 4
    qps: Literal["free", "vip", "off"] = "free"
    qps_overrides: Mapping[str, float] = field(default_factory=dict)
    upload_bandwidth: Timetable = UNLIMITED  # limits.upload_bandwidth (or --bwlimit)
    download_bandwidth: Timetable = UNLIMITED  # limits.download_bandwidth (restore --bwlimit)
    single_threshold: int = 16 << 20
    slice_workers: int = 4
    contain_dir: bool = True
    names: Literal["map", "skip"] = "map"
    stability_seconds: float = 3.0
    min_age: float = 0.0
    rescan_interval: float = 3600.0
    remote_check_interval: float = 900.0  # run: check the cloud this often (0: never)
    remote_check_files: int = 1000  # done files checked per root and check (rotating)
    ledger_url: str = field(default="", repr=False)  # may hold a database password
    ledger_wait: float = 60.0  # ledger.wait: how long to wait for a server that does not answer
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_file: Path | None = None
    monitor_port: int | None = None  # /healthz and /metrics of the watch agent (None: off)
    monitor_host: str = "127.0.0.1"
    # Files that hold secrets, never backed up (see own_paths): the sync.yaml in use, the
    # credentials.secrets_file, and the files named by SYNCAGENT_ENVIRONMENT_FILE (the
    # systemd unit's EnvironmentFile) and CREDENTIALS_DIRECTORY (systemd's LoadCredential).
    secret_files: tuple[Path, ...] = ()
    unhealthy_after: float = 300.0  # /healthz: 503 once 123pan is unreachable this long
    guard: GuardSettings = field(default_factory=GuardSettings)  # the mass-change guard
    fleet_host: str | None = None  # fleet.host: this host's name (None: the hostname)
    fleet_shared: Literal["auto", "on", "off"] = "auto"  # auto: shared when not SQLite
    # What loading decided that the user should hear about (a root given as a symbolic link
    # is backed up as the folder it points to); the commands log these at start.
    notices: tuple[str, ...] = ()

    def guard_for(self, root: RootConfig) -> GuardSettings:
        """The mass-change guard's settings for ``root``: its own ``guard:``, key by key
        over the top-level ones."""
        return root.guard or self.guard

    @property
    def own_paths(self) -> tuple[Path, ...]:
        """syncagent's own files, never backed up even when a root holds them (backing up a
        home folder holds the default state dir): the state dir (token, ledger, activity),
        the SQLite ledger and its journals, the log file, the data dir that holds the
        embedded emulator's store, and the files that hold the credentials. Uploading them
        would send the client secret or the access token to the cloud and, as the state
        changes on every pass, upload it again on every pass."""
        paths = [self.state_dir, Path(platformdirs.user_data_dir("syncagent"))]
        paths += self.secret_files
        if self.ledger_url.startswith("sqlite:///"):
            ledger = Path(self.ledger_url.removeprefix("sqlite:///").split("?", 1)[0])
            paths += [ledger.with_name(ledger.name + s) for s in ("", "-wal", "-shm", "-journal")]
        if self.log_file is not None:
            paths.append(self.log_file)
        return tuple(paths)


class _Problems:
    """Collects problems, each with its key path."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{key}: {message}")


def _expand(value: Any, key: str, env: Mapping[str, str], problems: _Problems) -> Any:
    """Replace ``${VAR}`` in every string; an unset variable is a problem at that key."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in env:
                problems.add(key, f"environment variable {m.group(1)} is not set")
                return ""
            return env[m.group(1)]

        return _ENV.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v, f"{key}[{i}]", env, problems) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {
            k: _expand(v, f"{key}.{k}" if key else str(k), env, problems) for k, v in value.items()
        }
    return value


def _unset_credentials(raw: Any, env: Mapping[str, str]) -> tuple[Any, list[tuple[str, str]]]:
    """``credentials.client_id``/``client_secret`` that are exactly ``${VAR}`` with VAR
    unset are taken out (as if left unset: the embedded emulator, as sync.yaml.example
    promises) instead of being a problem; returns the raw config and (key, VAR) of each."""
    if not isinstance(raw, dict) or not isinstance(raw.get("credentials"), dict):
        return raw, []
    creds = dict(raw["credentials"])
    unset = []
    for key in ("client_id", "client_secret"):
        value = creds.get(key)
        m = _ENV.fullmatch(value.strip()) if isinstance(value, str) else None
        if m is not None and m.group(1) not in env:
            unset.append((key, m.group(1)))
            del creds[key]
    return {**raw, "credentials": creds}, unset


def _size(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and (m := _SIZE.match(value)):
        unit = (m.group(2) or "").lower()
        if unit in _UNITS:
            return int(float(m.group(1)) * _UNITS[unit])
    return None


def _duration(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return float(m.group(1)) * _SECONDS[(m.group(2) or "").lower()]
    return None


def parse_duration(text: str) -> float | None:
    """Seconds from ``30m``, ``2h``, ``1d``, ``90`` (as the config writes durations); None
    if it is not one."""
    return _duration(text)


def _off_or_duration(value: Any) -> float | None:
    """A duration of at least a second, or 0/``off`` (YAML 1.1 reads a bare off as false)
    for never."""
    if value is False or value == "off":
        return 0.0
    d = _duration(value)
    return d if d is not None and (d == 0 or d >= MIN_RESCAN_INTERVAL) else None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Reader:
    """Reads one mapping, recording unknown keys and type problems under ``prefix``."""

    def __init__(self, raw: Any, prefix: str, known: tuple[str, ...], problems: _Problems):
        self.prefix = prefix
        self.problems = problems
        self.raw: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if raw is not None and not isinstance(raw, dict):
            problems.add(prefix or "(top level)", f"must be a mapping, not {_kind(raw)}")
        for key in self.raw:
            if str(key) not in known:
                near = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                problems.add(self.key(str(key)), f"unknown key{hint}")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def get(self, name: str, default: Any, convert: Callable[[Any], Any], what: str) -> Any:
        if name not in self.raw or self.raw[name] is None:
            return default
        value = convert(self.raw[name])
        if value is None:
            shown = "(hidden)" if "secret" in name else repr(self.raw[name])
            self.problems.add(self.key(name), f"must be {what}, not {shown}")
            return default
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> Any:
        return self.get(
            name, default, lambda v: v if v in choices else None, "one of " + ", ".join(choices)
        )


def _kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _int(minimum: int) -> Callable[[Any], int | None]:
    return lambda v: v if isinstance(v, int) and not isinstance(v, bool) and v >= minimum else None


def _fraction(v: Any) -> float | None:
    """0.5 or "50%": a share above 0 and at most 1."""
    if isinstance(v, str) and v.strip().endswith("%"):
        try:
            v = float(v.strip()[:-1]) / 100
        except ValueError:
            return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if 0 < v <= 1 else None


def _bool(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v.strip() else None


def _remote_path(v: Any) -> str | None:
    if not isinstance(v, str) or not v.startswith("/"):
        return None
    parts = [p for p in v.split("/") if p]
    if any(set(p) & _FORBIDDEN or len(p) > 255 or not p.strip(" ") for p in parts):
        return None
    return str(PurePosixPath("/", *parts))


def _not_utf8(path: Path) -> str | None:
    """The problem with a path that is not valid UTF-8 (the ledger and 123pan need UTF-8),
    the bad bytes shown as ``\\xff``; None for a good one."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        return f"{shown} is not valid UTF-8: rename the folder (the ledger and 123pan need UTF-8)"
    return None


def _followed(key: str, given: Path, notices: list[str]) -> Path:
    """``given``, or the folder it points to when it is a symbolic link (said in
    ``notices``): the walk never follows a link, so a root that is one would be read as
    nothing at all."""
    if not given.is_symlink():
        return given
    real = Path(os.path.realpath(given))
    notices.append(f"{key}: {given} is a symbolic link; backing up the folder it points to, {real}")
    return real


def _roots(
    raw: Any,
    problems: _Problems,
    cli_paths: list[str],
    notices: list[str],
    required: bool = True,
    guard_defaults: GuardSettings | None = None,
) -> tuple[RootConfig, ...]:
    if cli_paths:
        roots = []
        for i, p in enumerate(cli_paths):
            _followed(f"folder {i + 1}", Path(p).expanduser().absolute(), notices)
            local = Path(p).expanduser().resolve()
            if (bad := _not_utf8(local)) is not None:
                problems.add(f"folder {i + 1}", bad)
                continue
            roots.append(RootConfig(local, "/syncagent/" + local.name))
        _overlaps([(f"folder {i + 1}", r, True, True) for i, r in enumerate(roots)], problems)
        return tuple(roots)
    if raw is None:
        if required:
            problems.add("roots", "is missing: list at least one folder to back up")
        return ()
    if not isinstance(raw, list) or not raw:
        problems.add("roots", "must be a non-empty list of {local, remote} entries")
        return ()
    roots = []
    checked: list[tuple[str, RootConfig, bool, bool]] = []  # key, root, local ok, remote ok
    for i, item in enumerate(raw):
        r = _Reader(
            item,
            f"roots[{i}]",
            (
                "local",
                "remote",
                "mode",
                "ignore",
                "watch",
                "poll_interval",
                "max_deletes",
                "versions",
                "guard",
                "shared_remote",
            ),
            problems,
        )
        if not isinstance(item, dict):
            continue
        local_raw = r.raw.get("local")
        local = Path()
        local_ok = False
        if not isinstance(local_raw, str) or not local_raw.strip():
            problems.add(r.key("local"), "is required: the absolute path of a local folder")
        else:
            local = Path(local_raw).expanduser()
            if not local.is_absolute():
                problems.add(r.key("local"), f"must be an absolute path, not {local_raw!r}")
            elif not local.is_dir():
                problems.add(r.key("local"), f"{local_raw} is not an existing folder")
            elif (bad := _not_utf8(local)) is not None:
                problems.add(r.key("local"), bad)
            else:
                local = _followed(r.key("local"), local, notices)
                local_ok = True
        remote = r.get(
            "remote",
            None,
            _remote_path,
            'an absolute remote path like /backup/docs (no " \\ : * ? | > <)',
        )
        if "remote" not in r.raw:
            problems.add(r.key("remote"), "is required: the 123pan folder to back up into")
        ignore = r.get(
            "ignore",
            (),
            lambda v: (
                tuple(v) if isinstance(v, list) and all(isinstance(p, str) for p in v) else None
            ),
            "a list of patterns",
        )
        if ignore:
            from syncagent.ignore import pattern_problem

            for n, pattern in enumerate(ignore):
                if (why := pattern_problem(pattern)) is not None:
                    problems.add(f"{r.key('ignore')}[{n}]", why)
        versions, keep, keep_days = _versions(r.raw.get("versions"), r.key("versions"), problems)
        roots.append(
            root := RootConfig(
                local=local,
                remote=remote or "/",
                mode=r.choice("mode", "archive", ("archive", "mirror", "move")),
                max_deletes=r.get("max_deletes", 100, _int(0), "a whole number >= 0"),
                ignore=ignore,
                watch=r.choice("watch", "auto", ("auto", "poll")),
                poll_interval=r.get(
                    "poll_interval",
                    30.0,
                    lambda v: d if (d := _duration(v)) and d > 0 else None,
                    "a positive duration",
                ),
                versions=versions,
                versions_keep=keep,
                versions_keep_days=keep_days,
                guard=(
                    None
                    if r.raw.get("guard") is None
                    else _guard(r.raw["guard"], r.key("guard"), problems, guard_defaults)
                ),
                shared_remote=r.get("shared_remote", False, _bool, "true or false"),
            )
        )
        checked.append((f"roots[{i}]", root, local_ok, remote is not None))
    _overlaps(checked, problems)
    return tuple(roots)


def _guard(
    raw: Any, key: str, problems: _Problems, defaults: GuardSettings | None
) -> GuardSettings:
    """``guard:`` at the top level, or in a root (its keys over the top level's, which
    ``defaults`` holds; a root may set only ``min_files``, say)."""
    base = defaults or GuardSettings()
    g = _Reader(raw, key, ("enabled", "max_changed", "min_files"), problems)
    return GuardSettings(
        enabled=g.get("enabled", base.enabled, _bool, "true or false"),
        max_changed=g.get(
            "max_changed",
            base.max_changed,
            _fraction,
            "a fraction above 0 and at most 1 (e.g. 0.5 or 50%)",
        ),
        min_files=g.get("min_files", base.min_files, _int(1), "a whole number >= 1"),
    )


def bandwidth_limit(value: Any) -> Timetable:
    """A bandwidth limit or timetable (see syncagent/bwlimit.py), its rates written as the
    config's sizes are; raises ValueError saying what is wrong."""
    return parse_bandwidth(value, _size)


def _bandwidth(limits: _Reader, name: str, problems: _Problems) -> Timetable:
    """``limits.<name>``, or a problem listed and no limit."""
    try:
        return bandwidth_limit(limits.raw.get(name, "off"))
    except ValueError as exc:
        problems.add(limits.key(name), str(exc))
        return UNLIMITED


def _versions(raw: Any, key: str, problems: _Problems) -> tuple[bool, int | None, float | None]:
    """``versions: off`` (YAML reads ``off`` as false), or a mapping of retention settings."""
    if raw is None or raw is True or raw == "on":
        return True, None, None
    if raw is False or raw == "off":
        return False, None, None
    r = _Reader(raw, key, ("keep", "keep_days"), problems)
    if not isinstance(raw, dict):
        return True, None, None
    keep = r.get("keep", None, _int(1), "a whole number >= 1")
    keep_days = r.get(
        "keep_days",
        None,
        lambda v: (
            float(v) if isinstance(v, int | float) and not isinstance(v, bool) and v > 0 else None
        ),
        "a number of days > 0",
    )
    return True, keep, keep_days


def _overlaps(checked: list[tuple[str, RootConfig, bool, bool]], problems: _Problems) -> None:
    """Roots must not share files: a folder inside another root's folder would be uploaded
    twice, and two roots on one remote folder (or one inside the other) would overwrite each
    other's files. Local folders are compared with links resolved. ``checked`` holds
    (key, root, its local folder is valid, its remote folder is valid); invalid ones were
    reported already and are not compared."""
    locals_ = [(k, r.local, Path(os.path.realpath(r.local))) for k, r, ok, _ in checked if ok]
    remotes = [(k, r.remote, PurePosixPath(r.remote)) for k, r, _, ok in checked if ok]
    for j, (key_j, shown_j, path_j) in enumerate(locals_):
        for key_i, shown_i, path_i in locals_[:j]:
            if path_i == path_j:
                problems.add(f"{key_j}.local", f"{shown_j} is listed twice (also {key_i}.local)")
            elif path_j.is_relative_to(path_i) or path_i.is_relative_to(path_j):
                inner, outer = (key_j, key_i) if path_j.is_relative_to(path_i) else (key_i, key_j)
                problems.add(
                    f"{key_j}.local",
                    f"{shown_j} and {shown_i} ({key_i}.local) overlap: the folder of {inner} "
                    f"is inside that of {outer}, so its files would be backed up twice; keep "
                    "one of them (ignore patterns can leave a subfolder out)",
                )
    for j, (key_j, remote_j, rpath_j) in enumerate(remotes):
        for key_i, remote_i, rpath_i in remotes[:j]:
            if rpath_i == rpath_j:
                problems.add(
                    f"{key_j}.remote",
                    f"{remote_j} is also the remote folder of {key_i}: the two roots would "
                    "overwrite each other's files; give each root its own remote folder",
                )
            elif rpath_j.is_relative_to(rpath_i) or rpath_i.is_relative_to(rpath_j):
                inner, outer = (key_j, key_i) if rpath_j.is_relative_to(rpath_i) else (key_i, key_j)
                problems.add(
                    f"{key_j}.remote",
                    f"{remote_j} and {remote_i} ({key_i}.remote) overlap: the remote folder of "
                    f"{inner} is inside that of {outer}, so the two roots would overwrite each "
                    "other's files; give each root a remote folder outside the others",
                )


_TOP = (
    "roots",
    "credentials",
    "api_base",
    "upload",
    "limits",
    "stability",
    "rescan_interval",
    "remote_check",
    "state_dir",
    "ledger",
    "logging",
    "monitoring",
    "guard",
    "fleet",
)


def validate(
    raw: Any,
    env: Mapping[str, str],
    cli_paths: list[str] | None = None,
    *,
    roots_required: bool = True,
) -> SyncConfig:
    """Check a parsed ``sync.yaml`` (None for no file) and apply the environment.

    ``roots_required=False`` accepts no roots at all: commands that only read the state dir
    (``status``, ``db upgrade``) work with no configuration.

    :raises ConfigError: listing every problem with its key path.
    """
    problems = _Problems()
    raw, unset = _unset_credentials(raw, env)
    raw = _expand(raw, "", env, problems) if raw is not None else {}
    top = _Reader(raw, "", _TOP, problems)
    notices: list[str] = []
    guard_settings = _guard(top.raw.get("guard"), "guard", problems, None)
    roots = _roots(
        top.raw.get("roots"),
        problems,
        list(cli_paths or []),
        notices,
        roots_required,
        guard_settings,
    )

    cred = _Reader(
        top.raw.get("credentials"),
        "credentials",
        ("client_id", "client_secret", "secrets_file"),
        problems,
    )
    client_id = cred.get("client_id", "", _str, "a non-empty string")
    secret = cred.get("client_secret", "", _str, "a non-empty string")
    secrets_file = cred.get("secrets_file", None, _str, "a path")
    secret_files = [Path(env[k]) for k in _SECRET_ENV if env.get(k)]
    if secrets_file:
        secret_files.append(Path(secrets_file).expanduser())
        loaded = _secrets_file(Path(secrets_file).expanduser(), problems)
        client_id = client_id or loaded.get("client_id", "")
        secret = secret or loaded.get("client_secret", "")
    client_id = env.get("PAN123_CLIENT_ID") or client_id
    secret = env.get("PAN123_CLIENT_SECRET") or secret
    credentials = None
    if client_id and secret:
        credentials = Credentials(client_id, secret)
    elif (client_id or secret) and unset:  # one given, the other's variable unset
        for key, var in unset:
            problems.add(
                f"credentials.{key}",
                f"environment variable {var} is not set (client_id and client_secret must be "
                "given together)",
            )
    elif client_id or secret:
        problems.add("credentials", "client_id and client_secret must be given together")
    elif unset:  # the example's ${PAN123_CLIENT_ID} with nothing set: as if left out
        notices.append(
            f"credentials: {' and '.join(var for _, var in unset)} not set: backing up to the "
            "embedded local emulator, not to 123pan (set them to use a real account)"
        )

    api_base = env.get("PAN123_API_BASE") or top.get("api_base", DEFAULT_API_BASE, _str, "a URL")
    url = urlsplit(api_base)
    if url.scheme not in ("https", "http") or not url.hostname:
        problems.add("api_base", f"must be an http(s) URL, not {api_base!r}")
    elif url.scheme == "http" and not _is_loopback(url.hostname):
        problems.add("api_base", "plain http is allowed only for loopback (a local emulator)")

    up = _Reader(
        top.raw.get("upload"),
        "upload",
        ("workers", "single_threshold", "slice_workers", "contain_dir", "names"),
        problems,
    )
    threshold = up.get(
        "single_threshold",
        16 << 20,
        lambda v: s if (s := _size(v)) and 0 < s <= 1_000_000_000 else None,
        "a size between 1 and 1GB (e.g. 16MiB)",
    )
    limits = _Reader(
        top.raw.get("limits"),
        "limits",
        ("qps", "overrides", "upload_bandwidth", "download_bandwidth"),
        problems,
    )
    upload_bandwidth, download_bandwidth = (
        _bandwidth(limits, name, problems) for name in ("upload_bandwidth", "download_bandwidth")
    )
    overrides = limits.get(
        "overrides",
        {},
        lambda v: (
            v
            if isinstance(v, dict)
            and all(
                isinstance(q, int | float) and not isinstance(q, bool) and q > 0 for q in v.values()
            )
            else None
        ),
        "a mapping of endpoint to positive QPS",
    )
    overrides = {str(k).lstrip("/"): v for k, v in overrides.items()}
    if overrides:
        from syncagent.pan123.endpoints import ENDPOINTS

        for name in overrides:
            if name not in ENDPOINTS:
                near = difflib.get_close_matches(name, list(ENDPOINTS), n=1)
                hint = f"did you mean {near[0]!r}?" if near else "see the README for the list"
                problems.add(f"limits.overrides.{name}", f"unknown endpoint ({hint})")
    stab = _Reader(top.raw.get("stability"), "stability", ("quiet", "min_age"), problems)
    positive = lambda v: d if (d := _duration(v)) is not None and d >= 0 else None  # noqa: E731
    ledger = _Reader(top.raw.get("ledger"), "ledger", ("url", "wait"), problems)
    logs = _Reader(top.raw.get("logging"), "logging", ("level", "file"), problems)
    state_dir = Path(
        top.get("state_dir", platformdirs.user_state_dir("syncagent"), _str, "a path")
    ).expanduser()
    if not state_dir.is_absolute():
        problems.add("state_dir", f"must be an absolute path, not {str(state_dir)!r}")
    elif (bad := _not_utf8(state_dir)) is not None:
        problems.add("state_dir", bad)
    log_file = logs.get("file", None, _str, "a path")
    if log_file is not None:
        log_path = Path(log_file).expanduser()
        if not log_path.is_absolute():
            problems.add("logging.file", f"must be an absolute path, not {log_file!r}")
        elif log_path.is_dir():
            problems.add("logging.file", f"{log_file} is a folder, not a file")
        elif not log_path.parent.is_dir():
            problems.add("logging.file", f"the folder {log_path.parent} does not exist")
    check = _Reader(top.raw.get("remote_check"), "remote_check", ("interval", "files"), problems)
    mon = _Reader(
        top.raw.get("monitoring"),
        "monitoring",
        ("port", "host", "unhealthy_after", "allow_remote"),
        problems,
    )
    monitor_port = mon.get(
        "port",
        None,
        lambda v: v if _int(1)(v) is not None and v <= 65535 else None,
        "a port number (1-65535)",
    )
    if env.get(MONITOR_PORT_ENV):  # the container image sets it, so HEALTHCHECK has /healthz
        port_text = env[MONITOR_PORT_ENV]
        if port_text.isdigit() and 1 <= int(port_text) <= 65535:
            monitor_port = int(port_text)
        else:
            problems.add(
                f"monitoring.port (${MONITOR_PORT_ENV})",
                f"must be a port number (1-65535), not {port_text!r}",
            )
    monitor_host = mon.get("host", "127.0.0.1", _str, "an address")
    allow_remote = mon.get("allow_remote", False, _bool, "true or false")
    if not _is_loopback(monitor_host) and not allow_remote:
        problems.add(
            "monitoring.host",
            "must be a loopback address (127.0.0.1, ::1, localhost), unless "
            "monitoring.allow_remote: true (a container's published port, say)",
        )
    elif not _is_loopback(monitor_host):
        notices.append(
            f"monitoring.host: {monitor_host} is not loopback (allow_remote: true): /healthz "
            "and /metrics can be reached by anyone who reaches this address and port"
        )

    fleet = _Reader(top.raw.get("fleet"), "fleet", ("host", "shared"), problems)
    fleet_host = fleet.get(
        "host",
        None,
        lambda v: v.strip() if isinstance(v, str) and v.strip() and "/" not in v else None,
        "a host name (no /)",
    )
    fleet_shared = fleet.get(
        "shared",
        "auto",
        # YAML 1.1 reads bare on/off/true/false as booleans
        lambda v: ("on" if v else "off") if isinstance(v, bool) else v if v == "auto" else None,
        "auto, true or false",
    )

    config = SyncConfig(
        roots=roots,
        credentials=credentials,
        api_base=api_base.rstrip("/"),
        workers=up.get("workers", 4, _int(1), "a whole number >= 1"),
        qps=limits.get(
            "qps",
            "free",
            # YAML 1.1 reads a bare `off` as false: take it as the documented "off".
            lambda v: "off" if v is False else v if v in ("free", "vip", "off") else None,
            "one of free, vip, off",
        ),
        qps_overrides={str(k): float(v) for k, v in overrides.items()},
        upload_bandwidth=upload_bandwidth,
        download_bandwidth=download_bandwidth,
        single_threshold=threshold,
        slice_workers=up.get("slice_workers", 4, _int(1), "a whole number >= 1"),
        contain_dir=up.get("contain_dir", True, _bool, "true or false"),
        names=up.choice("names", "map", ("map", "skip")),
        stability_seconds=stab.get("quiet", 3.0, positive, "a duration (e.g. 3s)"),
        min_age=stab.get("min_age", 0.0, positive, "a duration"),
        rescan_interval=top.get(
            "rescan_interval",
            3600.0,
            lambda v: d if (d := _duration(v)) is not None and d >= MIN_RESCAN_INTERVAL else None,
            f"a duration of at least {MIN_RESCAN_INTERVAL:.0f}s (e.g. 1h)",
        ),
        remote_check_interval=check.get(
            "interval",
            900.0,
            # a bare `off` (YAML 1.1: false) turns the check off, like 0
            _off_or_duration,
            f"a duration of at least {MIN_RESCAN_INTERVAL:.0f}s (e.g. 15m), or 0/off for never",
        ),
        remote_check_files=check.get("files", 1000, _int(1), "a whole number >= 1"),
        state_dir=state_dir,
        ledger_url=ledger.get("url", f"sqlite:///{state_dir / 'ledger.sqlite3'}", _str, "a URL"),
        ledger_wait=ledger.get("wait", 60.0, positive, "a duration (e.g. 60s)"),
        log_level=logs.choice("level", "info", ("debug", "info", "warning", "error")),
        log_file=Path(log_file).expanduser() if log_file else None,
        monitor_port=monitor_port,
        monitor_host=monitor_host,
        secret_files=tuple(Path(os.path.abspath(p)) for p in secret_files),
        unhealthy_after=mon.get("unhealthy_after", 300.0, positive, "a duration (e.g. 5m)"),
        notices=tuple(notices),
        guard=guard_settings,
        fleet_host=fleet_host,
        fleet_shared=fleet_shared,
    )
    if problems.items:  # checked after every key was read, so all problems are listed
        raise ConfigError(problems.items)
    return config


def _secrets_file(path: Path, problems: _Problems) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problems.add("credentials.secrets_file", f"cannot read {path}: {exc.strerror}")
        return {}
    except yaml.YAMLError:
        problems.add("credentials.secrets_file", f"{path} is not valid YAML")
        return {}
    if not isinstance(data, dict):
        problems.add("credentials.secrets_file", f"{path} must hold client_id and client_secret")
        return {}
    return {k: str(v) for k, v in data.items() if k in ("client_id", "client_secret")}


def load_config(
    path: Path | None,
    env: Mapping[str, str] | None = None,
    cli_paths: list[str] | None = None,
    *,
    roots_required: bool = True,
) -> SyncConfig:
    """Read ``path`` (None: no file, environment and ``cli_paths`` only) and validate it.

    :raises ConfigError: unreadable file, bad YAML, or any invalid key.
    """
    env = dict(os.environ if env is None else env)
    raw: Any = None
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
        except UnicodeDecodeError:
            raise ConfigError([f"{path}: not UTF-8 text"]) from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ConfigError([f"{path}: not valid YAML{where}: {problem}"]) from None
    try:
        config = validate(raw, env, cli_paths, roots_required=roots_required)
    except ConfigError as err:  # every error names the file it came from
        raise ConfigError(err.problems, None if path is None else str(path.absolute())) from None
    if path is not None:  # the file in use holds or names the credentials: never backed up
        config = dataclasses.replace(
            config, secret_files=(Path(os.path.abspath(path)), *config.secret_files)
        )
    return config
