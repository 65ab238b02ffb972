"""A pass killed around the upload of a changed file, whose folder then cannot be read: the
ledger never goes on calling the old content done (chaos seeds 4 and 23).

The kill is made in-process at the client boundary (the pass dies just before or just after
123pan accepts the upload: nothing of the pass runs after it, as after a SIGKILL); the next
pass and ``verify`` are the installed CLI, started without the capabilities that let root
read any folder, so that ``chmod 100`` means to it what it means to an ordinary user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Api
from test_sync_cli import make_cli, remote_files
from test_sync_hostile import unreadable_launcher

from syncagent.app import open_ledger
from syncagent.config import load_config
from syncagent.emulator import Emulator
from syncagent.engine import SyncEngine
from syncagent.ledger import repo
from syncagent.ledger.repo import LedgerUploadState
from syncagent.pan123 import Pan123Client, UploadSettings


class _Killed(BaseException):
    """What a SIGKILL is to the pass: nothing after it runs."""


class _DiesAroundUpload(Pan123Client):
    """A client whose process dies just before or just after 123pan accepts an upload."""

    dies = ""

    def upload(self, *args: Any, **kwargs: Any) -> Any:
        if self.dies == "before":
            raise _Killed
        result = super().upload(*args, **kwargs)
        if self.dies == "after":
            raise _Killed
        return result


@pytest.mark.parametrize(
    ("dies", "versions"), [("before", True), ("after", True), ("after", False)]
)
def test_a_pass_killed_around_a_changed_files_upload_leaves_the_ledger_true(
    tmp_path: Path, emulator: Emulator, api: Api, dies: str, versions: bool
) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_bytes(b"old content\n")
    cli = make_cli(tmp_path, emulator, [(root, "/backup")])
    if not versions:  # the old copy is simply replaced (duplicate=2)
        text = cli.config.read_text(encoding="utf-8")
        text = text.replace('    remote: "/backup"\n', '    remote: "/backup"\n    versions: off\n')
        assert "versions: off" in text
        cli.config.write_text(text, encoding="utf-8")
    first = cli.sync(timeout=60)
    assert first.returncode == 0, first.stderr[-2000:]
    old_id = int(remote_files(api, "/backup")["sub/a.txt"]["fileId"])

    (root / "sub" / "a.txt").write_bytes(b"new content, longer\n")
    config = load_config(cli.config, env=cli.env)
    ledger = open_ledger(config)
    client = _DiesAroundUpload(
        emulator.client_id,
        emulator.client_secret,
        api_base=emulator.api_url,
        state_dir=tmp_path / "state",
        qps="off",
        upload=UploadSettings(complete_delay=0.01),
        upload_state=LedgerUploadState(ledger),
    )
    client.dies = dies
    try:
        with pytest.raises(_Killed):
            SyncEngine(config, ledger, client).run_once()
    finally:
        client.close()
        ledger.close()

    (root / "sub").chmod(0o100)  # its files can no longer be listed: left as they are
    cli.wrapper = unreadable_launcher()
    try:
        again = cli.sync(timeout=60)
        verified = cli.run("verify", "--config", str(cli.config), timeout=60)
    finally:
        (root / "sub").chmod(0o755)
    assert again.returncode in (0, 1), again.stderr[-2000:]
    assert verified.returncode == 0, (verified.stdout + verified.stderr)[-2000:]
    files = {
        rel: f for rel, f in remote_files(api, "/backup").items() if not rel.startswith(".sync")
    }
    assert list(files) == ["sub/a.txt"]
    if dies == "before":  # the old copy is back in place, and done as before
        assert int(files["sub/a.txt"]["fileId"]) == old_id
        ledger = open_ledger(config)
        try:
            root_id = repo.ensure_root(ledger, str(root), "/backup", "archive")[0]
            assert repo.load_facts(ledger, root_id)["sub/a.txt"].state == "done"
        finally:
            ledger.close()
    else:  # the new content is there (and the ledger does not call the old one done)
        assert int(files["sub/a.txt"]["fileId"]) != old_id
        assert files["sub/a.txt"]["size"] == len(b"new content, longer\n")
