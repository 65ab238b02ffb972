"""Composition root: a checked configuration becomes a ledger, a client and (without
credentials) the embedded emulator, opened together and closed together.

Without a 123pan account the agent runs against the emulator, started in this process on
loopback with its data under the user's data directory, so a first run needs nothing but a
folder. The token of a real account and of the emulator are kept apart in the state dir.

A dry run (``open_app(..., dry_run=True)``) changes nothing: the ledger is opened read-only
(a missing one is an empty in-memory ledger, one behind this version's schema is refused),
no emulator starts and no client can be made, so no token is fetched and no file created.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from syncagent.binding import EMBEDDED, Account
from syncagent.bwlimit import Timetable
from syncagent.config import SyncConfig
from syncagent.errors import LedgerError, SyncAgentError

if TYPE_CHECKING:  # loaded only when needed: a no-op pass should not pay for them
    from syncagent.emulator import Emulator
    from syncagent.ledger import Ledger  # SQLAlchemy, ~0.4 s: restore and ls open no ledger
    from syncagent.pan123 import Pan123Client

__all__ = ["App", "open_app", "open_client", "token_expiry"]


class App:
    """What a command works with; the client is made on first use. ``account`` is where
    this run backs up, which the ledger's rows are bound to."""

    def __init__(
        self,
        config: SyncConfig,
        ledger: Ledger,
        make_client: Callable[[], Pan123Client],
        emulator: Emulator | None,
        account: Account | None = None,
    ) -> None:
        self.config = config
        self.account = account
        self.ledger = ledger
        self.emulator = emulator
        self._make_client = make_client
        self._client: Pan123Client | None = None

    @property
    def client(self) -> Pan123Client:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def client_factory(self) -> Callable[[], Pan123Client]:
        return lambda: self.client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def open_ledger(
    config: SyncConfig, *, read_only: bool = False, outage_wait: float | None = None
) -> Ledger:
    """The ledger, migrated to this version's schema; ``read_only``: as it is, changing
    nothing (a missing or empty ledger reads as an empty one, kept in memory).

    :param outage_wait: how long to wait for a database server that does not answer
        (default: the ledger's, 60 s).
    :raises LedgerError: it cannot be opened or migrated; read-only, its schema is not
        this version's.
    """
    from syncagent import fleet
    from syncagent.host import load_host
    from syncagent.ledger import SCHEMA_HEAD, Ledger

    wait = config.ledger_wait if outage_wait is None else outage_wait
    if not read_only:
        ledger = Ledger(config.ledger_url, outage_wait=wait)
        try:
            ledger.migrate()
            fleet.register(ledger, load_host(config))  # this host's roots and passes
        except SyncAgentError:
            ledger.close()
            raise
        return ledger
    url = config.ledger_url
    if url.startswith("sqlite:///") and not os.path.exists(
        url.removeprefix("sqlite:///").split("?", 1)[0]
    ):
        return _empty_ledger()
    ledger = Ledger(url, read_only=True, outage_wait=wait)
    try:
        revision = ledger.current_revision()
    except LedgerError:
        ledger.close()
        raise
    if revision is None:
        ledger.close()
        return _empty_ledger()
    if revision != SCHEMA_HEAD:
        ledger.close()
        raise LedgerError(
            f"the ledger {url} has schema revision {revision}, this syncagent reads "
            f"{SCHEMA_HEAD}; a dry run does not upgrade it: run `syncagent db upgrade` "
            "(or a sync) first"
        )
    fleet.scope_read_only(ledger, config)
    return ledger


def _empty_ledger() -> Ledger:
    from syncagent.ledger import Ledger

    ledger = Ledger("sqlite://")
    ledger.migrate()
    return ledger


def account_client(config: SyncConfig) -> Callable[[], Pan123Client] | None:
    """A client for the configured account alone (no ledger, no emulator), for checks such
    as ``doctor``; None when no credentials are set."""
    creds = config.credentials
    if creds is None:
        return None

    def make() -> Pan123Client:
        from syncagent.pan123 import Pan123Client

        return Pan123Client(
            creds.client_id,
            creds.client_secret,
            api_base=config.api_base,
            state_dir=_token_dir(config, False),
            qps=config.qps,
            qps_overrides=dict(config.qps_overrides),
        )

    return make


def _rate(
    limit: Timetable,
    what: str,
    clock: Callable[[], datetime.datetime] = datetime.datetime.now,
) -> Callable[[], int] | None:
    """A client's ``upload_rate`` or ``download_rate``: the timetable's rate now, or None
    where there is no limit (nothing is paced then). When the timetable moves to another
    rate, the first transfer after it logs the new one (``upload bandwidth: now 2 MB/s
    until 23:00``), so a slower evening is never a mystery in the log."""
    if not limit.limited:
        return None
    last = [limit.rate_at(clock())]

    def rate() -> int:
        when = clock()
        now = limit.rate_at(when)
        if now != last[0]:
            last[0] = now
            logging.getLogger("syncagent").info("%s bandwidth: now %s", what, limit.describe(when))
        return now

    return rate


def _token_dir(config: SyncConfig, embedded: bool) -> Path:
    return config.state_dir / ("emulator" if embedded else "account")


def token_expiry(config: SyncConfig) -> float | None:
    """When the stored access token expires (read from the state dir; no request)."""
    for embedded in (False, True):
        try:
            raw = json.loads((_token_dir(config, embedded) / "token.json").read_text())
            if float(raw["expires_at"]) > 0 and (config.credentials is None) == embedded:
                return float(raw["expires_at"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def _account(
    config: SyncConfig, say: Callable[[str], None], doing: str = "backing up to"
) -> tuple[Emulator | None, str, str, str]:
    """(embedded emulator or None, client ID, secret, API base): the configured account, or
    without credentials the embedded emulator, started here."""
    if config.credentials is not None:
        creds = config.credentials
        return None, creds.client_id, creds.client_secret, config.api_base
    from syncagent.emulator import Emulator, EmulatorSettings
    from syncagent.emulator.core import data_dir_default

    data_dir = data_dir_default()
    emulator = Emulator(EmulatorSettings(data_dir=data_dir)).start()
    say(
        f"No 123pan credentials set: {doing} the embedded local emulator at "
        f"{emulator.api_url} (data in {data_dir}). Set PAN123_CLIENT_ID and "
        f"PAN123_CLIENT_SECRET to use a real account."
    )
    return emulator, emulator.client_id, emulator.client_secret, emulator.api_url


@contextmanager
def open_client(config: SyncConfig, say: Callable[[str], None]) -> Iterator[Pan123Client]:
    """Only a client (``restore``, ``ls``): no ledger is opened or created. The token is kept
    in the state dir as for the other commands (made if missing)."""
    from syncagent.pan123 import Pan123Client

    emulator, client_id, secret, api_base = _account(config, say, "reading from")
    try:
        with Pan123Client(
            client_id,
            secret,
            api_base=api_base,
            state_dir=_token_dir(config, emulator is not None),
            qps=config.qps,
            qps_overrides=dict(config.qps_overrides),
            # the embedded emulator is in this process on loopback: never via a proxy
            use_environment=emulator is None,
            upload_rate=_rate(config.upload_bandwidth, "upload"),
            download_rate=_rate(config.download_bandwidth, "download"),
        ) as client:
            yield client
    finally:
        if emulator is not None:
            emulator.stop()


@contextmanager
def open_app(
    config: SyncConfig, say: Callable[[str], None], *, dry_run: bool = False
) -> Iterator[App]:
    """Open everything a command needs; ``say`` reports the embedded emulator's use.

    ``dry_run``: the ledger read-only, no emulator, and no client (asking for one raises).
    """
    emulator: Emulator | None = None
    ledger: Ledger | None = None
    try:
        if dry_run:
            ledger = open_ledger(config, read_only=True)
            config = _for_this_host(config, ledger)
            # the account is known without a request, except the embedded emulator's
            # (its client ID is made by the emulator, which a dry run does not start)
            account = None
            if config.credentials is not None:
                account = Account(config.api_base, config.credentials.client_id)
            app = App(config, ledger, _no_client, None, account)
            try:
                yield app
            finally:
                app.close()
            return
        emulator, client_id, secret, api_base = _account(config, say)
        ledger = open_ledger(config)
        config = _for_this_host(config, ledger)
        token_dir = _token_dir(config, emulator is not None)
        ledger_ = ledger

        def make_client() -> Pan123Client:
            from syncagent.fleet import is_shared
            from syncagent.ledger.repo import LedgerUploadState
            from syncagent.ledger.token_store import LedgerTokenStore
            from syncagent.pan123 import Pan123Client, UploadSettings

            # a fleet: one token for every host, kept in the ledger (encrypted)
            shared_token = None
            if is_shared(config, config.ledger_url):
                shared_token = LedgerTokenStore(ledger_, client_id, secret, token_dir)
            return Pan123Client(
                client_id,
                secret,
                api_base=api_base,
                state_dir=token_dir,
                qps=config.qps,
                qps_overrides=dict(config.qps_overrides),
                upload=UploadSettings(
                    single_threshold=config.single_threshold,
                    slice_workers=config.slice_workers,
                    contain_dir=config.contain_dir,
                ),
                upload_state=LedgerUploadState(ledger_),
                token_store=shared_token,
                # every upload worker may have all its slices in flight at once: slice_workers
                # bodies being written and as many more awaiting their answer
                pool_size=max(16, config.workers * (2 * config.slice_workers + 1)),
                # the embedded emulator is in this process on loopback: never via a proxy
                use_environment=emulator is None,
                upload_rate=_rate(config.upload_bandwidth, "upload"),
                download_rate=_rate(config.download_bandwidth, "download"),
            )

        account = Account(EMBEDDED if emulator is not None else api_base, client_id)
        app = App(config, ledger, make_client, emulator, account)
        try:
            yield app
        finally:
            app.close()
    finally:
        if emulator is not None:
            emulator.stop()
        if ledger is not None:
            ledger.close()


def _for_this_host(config: SyncConfig, ledger: Ledger) -> SyncConfig:
    """The roots' remote folders as this host backs up into them (a fleet: per host)."""
    from syncagent.fleet import effective_config
    from syncagent.host import host_name

    return effective_config(config, ledger, host_name(config))


def _no_client() -> Pan123Client:
    raise SyncAgentError("a dry run makes no request to 123pan")


def human_time(ts: float | None) -> str:
    return "never" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
