"""When a failed file is tried again."""

from __future__ import annotations

import pytest

from syncagent.engine import CHANGING_PROMPT_RETRIES, MAX_BACKOFF, retry_delay


@pytest.mark.parametrize(
    ("attempts", "delay"), [(1, 30.0), (2, 60.0), (3, 120.0), (7, 1920.0), (8, MAX_BACKOFF)]
)
def test_failures_back_off_doubling_up_to_an_hour(attempts: int, delay: float) -> None:
    assert retry_delay(attempts) == delay


def test_a_file_still_being_written_is_retried_at_once_then_backs_off() -> None:
    prompt = [retry_delay(n, changing=True) for n in range(1, CHANGING_PROMPT_RETRIES + 1)]
    assert prompt == [0.0] * CHANGING_PROMPT_RETRIES
    after = CHANGING_PROMPT_RETRIES + 1
    assert retry_delay(after, changing=True) == 30.0  # e.g. a log that never stops growing
    assert retry_delay(after + 1, changing=True) == 60.0
