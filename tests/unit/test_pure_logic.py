"""The pure logic under the engine and the lists: back-off, listing cursors, listing filters, the index a filter
reads."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core import keys
from service.core.exceptions import BadCursor
from service.core.indexes import JobFilter, index_for
from service.core.reads import decode_cursor, encode_cursor
from service.core.status import Status
from service.core.views import JobView
from service.engine.runtime import backoff_s
from service.kinds import Backoff


@given(base=st.floats(0.01, 100), cap=st.floats(0.01, 3600), job_try=st.integers(1, 40))
def test_back_off_is_half_fixed_half_random_and_capped(base: float, cap: float, job_try: int) -> None:
    step = min(cap, base * 2 ** (job_try - 1))
    assert step / 2 <= backoff_s(Backoff(base_s=base, cap_s=cap), job_try) <= step


def test_back_off_doubles_until_the_cap() -> None:
    backoff = Backoff(base_s=1, cap_s=10)
    lows = [min(10, 2 ** (n - 1)) / 2 for n in range(1, 8)]
    assert lows == [0.5, 1, 2, 4, 5, 5, 5]
    for n, low in enumerate(lows, start=1):
        assert low <= backoff_s(backoff, n) <= 2 * low


@given(score=st.integers(0, 2**53), job_id=st.text(st.characters(codec="utf-8"), min_size=1, max_size=40))
def test_a_cursor_gives_back_what_it_was_made_of(score: int, job_id: str) -> None:
    assert decode_cursor(encode_cursor(score, job_id)) == (score, job_id)


@pytest.mark.parametrize("cursor", ["", "!!!", "bm9jb2xvbg", "YWJjOmRlZg"])  # empty, not base64, no colon, no number
def test_a_cursor_not_handed_out_is_refused(cursor: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(cursor)


def view(**changes: object) -> JobView:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    values: dict[str, object] = {
        "id": "j1", "name": "run_sleep_task", "status": Status.SUCCESS, "owner": "ada", "enqueued_at": now,
        "started_at": now, "finished_at": now, "attempt": 1, "progress": None, "queue": "default",
    }  # fmt: skip
    return JobView.model_validate({**values, **changes})


def test_a_filter_keeps_only_what_it_names() -> None:
    job = view()
    assert JobFilter().keeps(job)
    assert JobFilter(status=Status.SUCCESS, name="run_sleep_task", queue="default", owner="ada").keeps(job)
    assert not JobFilter(status=Status.FAILURE).keeps(job)
    assert not JobFilter(name="send_notification").keeps(job)
    assert not JobFilter(queue="reports").keeps(job)
    assert not JobFilter(owner="bob").keeps(job)
    assert not JobFilter(owner="ada").keeps(view(owner=None))


def test_a_filter_reads_the_index_that_holds_only_what_it_asks() -> None:
    assert index_for(JobFilter()) == keys.ALL_JOBS_INDEX
    assert index_for(JobFilter(status=Status.FAILURE)) == keys.FAILED_INDEX
    assert index_for(JobFilter(status=Status.FAILURE, owner="ada")) == keys.user_failed_index("ada")
    assert index_for(JobFilter(owner="ada", name="x", queue="q")) == keys.user_jobs_index("ada")
    assert index_for(JobFilter(name="x", queue="q")) == keys.kind_index("x")
    assert index_for(JobFilter(queue="q", status=Status.SUCCESS)) == keys.queue_index("q")
