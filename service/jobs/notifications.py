"""The simulated e-mail: wait, then append the notification to DATA_DIR/notifications.log, once per job."""

from datetime import UTC, datetime
from typing import Any

from .context import job_settings, scaled_sleep
from .effects import append_once

NOTIFICATION_SECONDS = 5
DEFAULT_MESSAGE = "some notification"


def notification_lines(email: str, message: str, query: str | None, job_id: str, now: datetime) -> str:
    text = f"{now.isoformat()} notification for {email}: {message} [{job_id}]\n"
    if query is not None:
        text += f"found query: {query} [{job_id}]\n"
    return text


async def send_notification(ctx: dict[str, Any], email: str, message: str, query: str | None = None) -> bool:
    """'Send' an e-mail: takes 5 s (times SLEEP_SCALE), then logs it. Returns True once delivered."""
    await scaled_sleep(ctx, NOTIFICATION_SECONDS)
    text = notification_lines(email, message, query, ctx["job_id"], datetime.now(UTC))
    await append_once(ctx, job_settings(ctx).notifications_log, text, "notification")
    return True
