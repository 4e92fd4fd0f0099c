"""The simulated e-mail: wait, then append the notification to DATA_DIR/notifications.log, once per job."""

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from service.core.failures import PermanentFailure, TransientFailure
from service.kinds.context import JobContext
from service.kinds.declare import job_kind
from service.kinds.fields import SafeText

NOTIFICATION_SECONDS = 5
DEFAULT_MESSAGE = "some notification"
# Simulated mail-server answers, so that failures can be shown and tested: a mailbox named `bounce` does not
# exist (fails for good, like a 550), and one named `flaky` is busy for the first FLAKY_FAILURES tries (like a
# 451 greylisting), then accepts.
BOUNCE_MAILBOX = "bounce"
FLAKY_MAILBOX = "flaky"
FLAKY_FAILURES = 2


class NotificationArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    message: SafeText = Field(default=DEFAULT_MESSAGE, description="at most 1000 printable characters")
    query: SafeText | None = Field(default=None, description="logged as `found query: <query>`")


def deliver(email: str, attempt: int) -> None:
    """Raise what the simulated mail server answers for `email` on this try."""
    mailbox = email.partition("@")[0].lower()
    if mailbox == BOUNCE_MAILBOX:
        raise PermanentFailure("550 mailbox unavailable: the address does not exist")
    if mailbox == FLAKY_MAILBOX and attempt <= FLAKY_FAILURES:
        raise TransientFailure("451 mailbox busy, try again later")


def notification_lines(email: str, message: str, query: str | None, job_id: str, now: datetime) -> str:
    text = f"{now.isoformat()} notification for {email}: {message} [{job_id}]\n"
    if query is not None:
        text += f"found query: {query} [{job_id}]\n"
    return text


@job_kind(
    args=NotificationArgs,
    result=bool,
    title="Notification",
    description="'Send' an e-mail: after 5 s, one line in notifications.log, exactly once",
    max_tries=5,
)
async def send_notification(job: JobContext, args: NotificationArgs) -> bool:
    await job.sleep(NOTIFICATION_SECONDS)
    deliver(args.email, job.attempt)
    text = notification_lines(args.email, args.message, args.query, job.id, datetime.now(UTC))
    await job.append_once(job.settings.notifications_log, text, "notification")
    return True
