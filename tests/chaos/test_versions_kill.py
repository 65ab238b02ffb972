"""SIGKILLs during passes that keep versions, in CI: :data:`CI_SEEDS` of
``tests/chaos/versions_kill.py`` (``python -m tests.chaos.versions_kill --seeds 20`` runs
more by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Api  # the tests' own plain-HTTP caller (tests/conftest.py)

from syncagent.emulator import Emulator, EmulatorSettings

from .versions_kill import CI_SEEDS, REMOTE, VERSIONS, _md5, _Run, run_seed


@pytest.mark.slow
@pytest.mark.parametrize("seed", CI_SEEDS)
def test_every_version_survives_kills_exactly_once(seed: int, tmp_path: Path) -> None:
    result = run_seed(seed, tmp_path / f"seed-{seed}")
    print(result.line())
    assert not result.violations, result.report()
    assert result.kills >= 1 and result.versions >= 5, result.line()


def _folder(api: Api, parent: int, path: str) -> int:
    for part in path.split("/"):
        [item] = [i for i in api.listing(parent) if i["filename"] == part and not i["trashed"]]
        parent = int(item["fileId"])
    return parent


def test_the_checks_fail_on_a_doubled_or_a_lost_version(tmp_path: Path) -> None:
    """The checker itself: after two clean passes it is satisfied; a second copy of a version
    (uploaded by hand), then the version trashed, are each reported."""
    settings = EmulatorSettings(
        data_dir=tmp_path / "emu", rate_limits="off", complete_pending_polls=0
    )
    with Emulator(settings) as emu:
        run = _Run(11, tmp_path / "work", emu)
        run.create()
        run.full_pass()
        run.backed_up()
        path = sorted(p for p in run.files if "/" not in p)[0]
        old = run.files[path]
        run._write(path, b"the second content\n")
        run.full_pass()
        run.backed_up()
        run.check("clean")
        assert run.result.violations == [] and run.result.versions == 1

        api = Api(emu)
        try:
            folder = _folder(api, 0, f"{REMOTE.strip('/')}/{VERSIONS}{path}")
            [kept] = api.listing(folder)
            api.ok(api.single(f"20000101T000000.000000Z~{path}", old, folder))
            run.check("doubled")
            assert any("kept 2 times" in v for v in run.result.violations), run.result.violations
            run.result.violations.clear()
            for item in api.listing(folder):
                api.ok(api.post("/api/v1/file/trash", {"fileIDs": [int(item["fileId"])]}))
            run.check("lost")
            assert any("kept 0 times" in v for v in run.result.violations), run.result.violations
            assert kept["etag"] == _md5(old)
        finally:
            api.close()
