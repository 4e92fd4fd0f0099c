"""Cron expressions as arq's `cron()` options, and their next run: five fields (minute hour day month weekday), or
six with the seconds first (`*/10 * * * * *`: every ten seconds)."""

from datetime import datetime
from typing import Any

from arq.cron import next_cron

# (field, lowest, highest) in the order of a cron expression.
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
SECONDS = ("second", 0, 59)


def _values(text: str, low: int, high: int) -> set[int] | None:
    """The values one field allows; None for `*` (every value)."""
    if text == "*":
        return None
    allowed: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (int(n) for n in span.split("-", 1))
        else:
            first = last = int(span)
            if step_text:
                last = high
        if not (low <= first <= last <= high) or step < 1:
            raise ValueError(f"{part!r} is outside {low}-{high}")
        allowed.update(range(first, last + 1, step))
    return allowed


def parse_cron(expression: str) -> dict[str, Any]:
    """`"*/5 * * * *"` -> arq's `cron(minute={0, 5, ...})` options; ValueError for anything else."""
    parts = expression.split()
    fields = (SECONDS, *FIELDS) if len(parts) == len(FIELDS) + 1 else FIELDS
    if len(parts) != len(fields):
        raise ValueError(
            f"a cron expression has five fields (minute hour day month weekday), or six with seconds first, "
            f"not {expression!r}"
        )
    options: dict[str, Any] = {"second": 0}
    for text, (name, low, high) in zip(parts, fields, strict=True):
        try:
            values = _values(text, low, high)
        except ValueError as e:
            raise ValueError(f"cron field {name} in {expression!r}: {e}") from None
        if values is None and name == "second":
            options["second"] = None  # every second (arq's cron() means second 0 when it is left out)
        elif values is not None:
            # cron counts weekdays from Sunday (0 or 7), arq from Monday (datetime.weekday()).
            options[name] = {(v - 1) % 7 for v in values} if name == "weekday" else values
    return options


def next_run(expression: str, after: datetime) -> datetime:
    return next_cron(after, **parse_cron(expression), microsecond=0)
