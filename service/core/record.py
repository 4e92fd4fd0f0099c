"""The job record: the hash `fj:job:<id>` with what arq's own keys do not hold. One schema, for Python and Lua.

arq keeps a job's definition, its try counter, its claim and its result; this record adds who owns the job, when
and where each try started, its progress and the error of a try that will be retried. Python reads and writes the
fields through `Field`; the Lua scripts name them through `lua()`, which fills `$field` placeholders from the same
enum, so a renamed field cannot drift between the two.
"""

from enum import StrEnum
from string import Template


class Field(StrEnum):
    NAME = "name"  # the kind's name, as arq's definition has it (kept after the definition is gone)
    QUEUE = "queue"
    OWNER = "owner"  # the user who enqueued it with a token; absent for an anonymous job
    ENQUEUED_AT = (
        "enqueued_at"  # ms; written by the enqueue script only (a record without it was queued by another client)
    )
    STARTED_AT = "started_at"  # ms, of the latest try
    ATTEMPT = "attempt"  # the latest try's number
    WORKER = "worker"  # the worker process that runs (or ran) the latest try
    PROGRESS_CURRENT = "progress_current"
    PROGRESS_TOTAL = "progress_total"
    ERROR_TYPE = "error_type"  # the error of a try that is being retried
    ERROR_MESSAGE = "error_message"
    ABORT_REQUESTED = "abort_requested"  # ms; an abort asked for while a worker had claimed the job


def lua(script: str) -> str:
    """`script` with each `$field` (a `Field` value) replaced by its quoted name: `'$owner'` -> `'owner'`."""
    return Template(script).substitute({f.value: f.value for f in Field})


# Every script that changes a job announces it on the job's events channel with this line (`events_key` names it).
LUA_ANNOUNCE = "redis.call('PUBLISH', events_key, '')"
