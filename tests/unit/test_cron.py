"""The cron parser (`service.kinds.schedule`) against croniter, a well-kept cron library, as the oracle: for any
expression of the forms we accept and any start, the next run is croniter's (with day and weekday both holding, as
arq's cron matches them: croniter's `day_or=False`)."""

from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from service.kinds.schedule import next_run, parse_cron


def field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    # a < b: croniter reads a range of one value ("5-5") as "*" (ours reads it as 5: see the test below).
    span = st.tuples(number, number).filter(lambda ab: ab[0] != ab[1]).map(sorted).map(lambda ab: f"{ab[0]}-{ab[1]}")
    step = st.integers(1, max(1, high - low))
    one = st.one_of(
        number.map(str),
        span,
        step.map(lambda n: f"*/{n}"),
        st.tuples(span, step).map(lambda t: f"{t[0]}/{t[1]}"),
    )
    return st.one_of(st.just("*"), st.lists(one, min_size=1, max_size=3).map(",".join))


# Days 1-28: every month has them, so no expression asks for a date that never comes (February 30th).
EXPRESSIONS = st.tuples(field(0, 59), field(0, 23), field(1, 28), field(1, 12), field(0, 7)).map(" ".join)
STARTS = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda d: d.replace(second=30, microsecond=0, tzinfo=UTC)  # between two minutes: "next" is unambiguous
)


@settings(max_examples=300, deadline=None)
@given(expression=EXPRESSIONS, start=STARTS)
def test_the_next_run_is_croniters(expression: str, start: datetime) -> None:
    expected = croniter(expression, start, day_or=False).get_next(datetime)
    assert next_run(expression, start) == expected


@settings(max_examples=100, deadline=None)
@given(
    seconds=field(0, 59),
    start=STARTS.map(lambda d: d.replace(second=0) + timedelta(milliseconds=500)),
)
def test_six_fields_put_the_seconds_first(seconds: str, start: datetime) -> None:
    expression = f"{seconds} * * * * *"
    expected = croniter(f"* * * * * {seconds}", start, day_or=False).get_next(datetime)  # croniter: seconds last
    assert next_run(expression, start) == expected


def test_a_range_of_one_value_is_that_value() -> None:
    start = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)  # a Thursday
    assert next_run("5-5 * * * *", start) == next_run("5 * * * *", start) == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    assert next_run("* * * * 0-0", start) == datetime(2026, 1, 4, tzinfo=UTC)  # Sunday


@pytest.mark.parametrize(
    "expression",
    ["", "* * * *", "* * * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
     "*/0 * * * *", "5-1 * * * *", "a * * * *", "1-2-3 * * * *"],
)  # fmt: skip
def test_malformed_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        parse_cron(expression)
