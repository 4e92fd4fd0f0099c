"""The simulated e-mail: wait, then append the notification to DATA_DIR/notifications.log, once per job."""

from datetime import UTC, datetime
from typing import Any

from service.core.failures import PermanentFailure, TransientFailure
from service.kinds.context import job_settings, scaled_sleep
from service.kinds.effects import append_once

NOTIFICATION_SECONDS = 5
DEFAULT_MESSAGE = "some notification"
# Simulated mail-server answers, so that failures can be shown and tested: a mailbox named `bounce` does not
# exist (fails for good, like a 550), and one named `flaky` is busy for the first FLAKY_FAILURES tries (like a
# 451 greylisting), then accepts.
BOUNCE_MAILBOX = "bounce"
FLAKY_MAILBOX = "flaky"
FLAKY_FAILURES = 2
NOTIFICATION_MAX_TRIES = 5


def deliver(email: str, job_try: int) -> None:
    """Raise what the simulated mail server answers for `email` on this try."""
    mailbox = email.partition("@")[0].lower()
    if mailbox == BOUNCE_MAILBOX:
        raise PermanentFailure("550 mailbox unavailable: the address does not exist")
    if mailbox == FLAKY_MAILBOX and job_try <= FLAKY_FAILURES:
        raise TransientFailure("451 mailbox busy, try again later")


def notification_lines(email: str, message: str, query: str | None, job_id: str, now: datetime) -> str:
    text = f"{now.isoformat()} notification for {email}: {message} [{job_id}]\n"
    if query is not None:
        text += f"found query: {query} [{job_id}]\n"
    return text


async def send_notification(ctx: dict[str, Any], email: str, message: str, query: str | None = None) -> bool:
    """'Send' an e-mail: takes 5 s (times SLEEP_SCALE), then logs it. Returns True once delivered."""
    await scaled_sleep(ctx, NOTIFICATION_SECONDS)
    deliver(email, ctx["job_try"])
    text = notification_lines(email, message, query, ctx["job_id"], datetime.now(UTC))
    await append_once(ctx, job_settings(ctx).notifications_log, text, "notification")
    return True
