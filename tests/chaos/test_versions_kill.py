"""SIGKILLs during passes that keep versions, in CI: :data:`CI_SEEDS` of
``tests/chaos/versions_kill.py`` (``python -m tests.chaos.versions_kill --seeds 20`` runs
more by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .versions_kill import CI_SEEDS, run_seed


@pytest.mark.slow
@pytest.mark.parametrize("seed", CI_SEEDS)
def test_every_version_survives_kills_exactly_once(seed: int, tmp_path: Path) -> None:
    result = run_seed(seed, tmp_path / f"seed-{seed}")
    print(result.line())
    assert not result.violations, result.report()
    assert result.kills >= 1 and result.versions >= 5, result.line()
