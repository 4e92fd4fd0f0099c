"""Webhooks: when a job with a `callback_url` ends, a job of this kind POSTs the job's view to it, signed.

The worker that finishes the job queues the delivery in the same transaction that writes the job's result (an
abort that revokes a queued job queues it too), so a delivery is never lost between the two. It is a job like any
other: listed, shown on the dashboard, retried with back-off until the receiver answers 2xx (at least once; a
receiver deduplicates by `X-Job-Id`).
"""

import ipaddress
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from service.auth import User
from service.core.exceptions import JobNotFound
from service.core.failures import PermanentFailure, TransientFailure
from service.core.reads import read_snapshot
from service.core.webhooks import WEBHOOK_KIND, WEBHOOK_QUEUE, Allowlist, CallbackRefused, check_callback, signature
from service.kinds.context import JobContext
from service.kinds.declare import Backoff, job_kind

# What is read of a receiver's answer, at most: enough to quote in the delivery's error, never a whole download.
MAX_ANSWER_BYTES = 1024
USER_AGENT = "fastapi-arq-jobs-webhook/1"


class WebhookArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str
    url: str


class WebhookResult(BaseModel):
    job_id: str
    status_code: int


async def _answer_excerpt(response: httpx.Response) -> str:
    """The start of the receiver's answer, reading no more than MAX_ANSWER_BYTES."""
    read = b""
    async for chunk in response.aiter_raw():
        read += chunk
        if len(read) >= MAX_ANSWER_BYTES:
            break
    return read[:MAX_ANSWER_BYTES].decode(errors="replace")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@job_kind(
    args=WebhookArgs,
    result=WebhookResult,
    name=WEBHOOK_KIND,
    queue=WEBHOOK_QUEUE,
    title="Webhook",
    description="POST a finished job's view to its callback_url, signed with WEBHOOK_SECRET",
    internal=True,
    # The first retry 4-8 s after a failed delivery; then doubling up to 15 min: about 3.5 h of tries in all.
    max_tries=20,
    backoff=Backoff(base_s=8, cap_s=900),
    timeout_s=60,
)
async def deliver_webhook(job: JobContext, args: WebhookArgs) -> WebhookResult:
    settings = job.settings
    if not settings.webhook_secret:
        raise PermanentFailure("WEBHOOK_SECRET is not set: the webhook cannot be signed")
    try:
        # Again at delivery: the allowlist may have changed since the enqueue, and the name's addresses too.
        target = await check_callback(args.url, Allowlist.parse(settings.webhook_allowed_hosts))
    except CallbackRefused as e:
        raise PermanentFailure(str(e)) from None
    except OSError as e:
        raise TransientFailure(f"the callback's host could not be resolved: {type(e).__name__}") from None
    try:
        snapshot = await read_snapshot(job.redis, args.job_id)
    except JobNotFound:
        raise PermanentFailure("the job is gone (deleted or expired); there is nothing to deliver") from None
    owner = snapshot.view.owner
    # As its owner sees it: with its arguments (an owned job's), never a traceback.
    body = snapshot.detail(User(owner) if owner else None).model_dump_json().encode()
    headers = {
        "Content-Type": "application/json",
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "X-Signature": signature(settings.webhook_secret, body),
        "X-Job-Id": args.job_id,
        "X-Webhook-Attempt": str(job.attempt),
    }
    extensions: dict[str, Any] = {} if _is_address(target.host) else {"sni_hostname": target.host}
    # trust_env=False: no HTTP(S)_PROXY from the environment, which would connect to the name, not the address.
    async with httpx.AsyncClient(follow_redirects=False, timeout=settings.webhook_timeout_s, trust_env=False) as http:
        try:
            request = http.build_request(
                "POST", target.connect_url, content=body, headers=headers, extensions=extensions
            )
            response = await http.send(request, stream=True)
            try:
                excerpt = await _answer_excerpt(response)
            finally:
                await response.aclose()
        except httpx.HTTPError as e:
            raise TransientFailure(f"the callback could not be reached: {type(e).__name__}") from None
    if not response.is_success:
        # A redirect too: it is not followed, and it is not a delivery.
        quoted = " ".join(excerpt.split())[:200]
        raise TransientFailure(f"the callback answered {response.status_code}" + (f": {quoted}" if quoted else ""))
    return WebhookResult(job_id=args.job_id, status_code=response.status_code)
