"""The job record: the hash `fj:job:<id>` with what arq's own keys do not hold. One schema, for Python and Lua.

arq keeps a job's definition, its try counter, its claim and its result; this record adds who owns the job, when
and where each try started, its progress and the error of a try that will be retried. Python reads and writes the
fields through `Field`; the Lua scripts name them through `lua()`, which fills `$field` placeholders from the same
enum, so a renamed field cannot drift between the two.
"""

from enum import StrEnum
from string import Template

from service.core.keys import DEFAULT_QUEUE, QUEUE_KEY_PREFIX, queue_key


class Field(StrEnum):
    NAME = "name"  # the kind's name, as arq's definition has it (kept after the definition is gone)
    QUEUE = "queue"  # the queue's name (`default` when absent: a job queued by another client)
    OWNER = "owner"  # the user who enqueued it with a token; absent for an anonymous job
    # ms; written by the enqueue script (a record without it was queued by another client, a cron job say)
    ENQUEUED_AT = "enqueued_at"
    SCHEDULED_FOR = "scheduled_for"  # ms; only for a job enqueued to run later (delay_s or run_at)
    STARTED_AT = "started_at"  # ms, of the latest try
    ATTEMPT = "attempt"  # the latest try's number
    WORKER = "worker"  # the worker process that runs (or ran) the latest try
    PROGRESS_CURRENT = "progress_current"
    PROGRESS_TOTAL = "progress_total"
    ERROR_TYPE = "error_type"  # the error of a try that is being retried
    ERROR_MESSAGE = "error_message"
    ABORT_REQUESTED = "abort_requested"  # ms; an abort asked for while a worker had claimed the job
    TRACEBACK = "traceback"  # the failed try's traceback, for admins only
    RETRIED_AS = "retried_as"  # the id of the job that ran it again (`POST /jobs/{id}/retry`, `POST /jobs/retry`)
    # `try:<n>`: "<started ms> <worker id>" of each try; `try_error:<n>`: the error of a try that was retried.
    TRY = "try"
    TRY_ERROR = "try_error"
    CALLBACK_URL = "callback_url"  # where its webhook goes when it ends (`POST /jobs` with a callback_url)
    WEBHOOK_JOB = "webhook_job"  # the id of the job that delivers that webhook, once queued
    TRACEPARENT = "traceparent"  # the W3C trace context of its enqueue, when tracing is on
    TRACE_LAST_TRY = "trace_last_try"  # that of its latest try that ended in a retry (the next try links to it)


def try_field(attempt: int | str) -> str:
    """The record's field of try `attempt`: "<started ms> <worker id>" (the take script writes `'$try:' .. n`)."""
    return f"{Field.TRY}:{attempt}"


def try_error_field(attempt: int | str) -> str:
    """The record's field with the error that ended try `attempt`, if it was retried: "<type>: <message>"."""
    return f"{Field.TRY_ERROR}:{attempt}"


def lua(script: str) -> str:
    """`script` with each `$field` (a `Field` value) replaced by its quoted name: `'$owner'` -> `'owner'`."""
    return Template(script).substitute({f.value: f.value for f in Field})


# `queue_key(record_key)` in Lua: the key of the queue named in a job's record, as `keys.queue_key` maps it.
LUA_QUEUE_KEY = f"""
local function queue_key(record_key)
  local name = redis.call('HGET', record_key, '$queue')
  if not name or name == '{DEFAULT_QUEUE}' then return '{queue_key(DEFAULT_QUEUE)}' end
  return '{QUEUE_KEY_PREFIX}' .. name
end
"""


# Every script that changes a job announces it on the job's events channel with this line (`events_key` names it).
LUA_ANNOUNCE = "redis.call('PUBLISH', events_key, '')"
