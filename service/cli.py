"""`python -m service`: the processes' helpers (`run`, `token`, `signin-link`, `check`) and the operator's
command line, `python -m service <noun> <verb>`, with the workers' Redis settings alone (no web app needed).

    python -m service jobs list --status FAILURE        tables for people (colour only on a terminal)
    python -m service jobs show 3f2a... --json          JSON for scripts

Exit status: 0 done, 1 not found or not allowed in the job's state, 2 bad usage (one line on stderr), 3 Redis did
not answer. Commands are parsed by argparse (the standard library's: `--help` at every level, exit 2 on bad usage);
tables are drawn by rich.
"""

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, NoReturn

import orjson
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rich import box
from rich.console import Console
from rich.table import Table

from service.auth import User, valid_user_id
from service.client import Jobs, RedisUnavailable
from service.core.exceptions import BadCursor, JobNotFound, JobStateConflict
from service.core.indexes import JobFilter, index_for
from service.core.queues import read_queues
from service.core.reads import list_jobs, read_snapshot
from service.core.status import Status
from service.core.workers import alive_workers
from service.kinds import queues_of

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
OPERATOR = User(id="cli", admin=True)  # who the command line acts as: it holds the Redis credentials
STATUS_STYLES = {
    Status.SUCCESS: "green",
    Status.FAILURE: "red",
    Status.REVOKED: "yellow",
    Status.STARTED: "cyan",
    Status.RETRY: "magenta",
}


class Parser(argparse.ArgumentParser):
    """argparse, with a bad command said in one line (and exit 2) rather than the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (try: {self.prog} --help)\n")


class Failed(Exception):
    """A command that could not be done: its line on stderr, and its exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# --- output --------------------------------------------------------------------------------------------------------


def _console() -> Console:
    # Piped into a file or another program: no colour, and wide enough that no id is cut.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 250)


def _table(*columns: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=True)
    return table


def relative(at: datetime | None, now: datetime | None = None) -> str:
    """`12 s ago`, `in 3 min`, `2 h ago`, `5 d ago`; `-` for none."""
    if at is None:
        return "-"
    seconds = ((now or datetime.now(UTC)) - at).total_seconds()
    amount = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if amount >= size:
            text = f"{int(amount // size)} {unit}"
            break
    else:
        text = f"{int(amount)} s"
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def _duration(seconds: float) -> str:
    return "-" if seconds <= 0 else relative(datetime.fromtimestamp(0, UTC), datetime.fromtimestamp(seconds, UTC))[:-4]


def _status(status: Status) -> str:
    style = STATUS_STYLES.get(status)
    return f"[{style}]{status}[/]" if style else str(status)


def _print_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NAIVE_UTC) + b"\n")


def _answer(args: argparse.Namespace, value: Any, line: str) -> None:
    """What an action did: `value` as JSON with --json, else one line."""
    if args.json:
        _print_json(value)
    else:
        sys.stdout.write(f"{line}\n")


# --- commands ------------------------------------------------------------------------------------------------------

Command = Callable[[Jobs, argparse.Namespace], Awaitable[None]]


async def jobs_list(jobs: Jobs, args: argparse.Namespace) -> None:
    where = JobFilter(status=args.status, name=args.kind, queue=args.queue, owner=args.owner)
    try:
        views, cursor = await list_jobs(jobs.redis, index_for(where), limit=args.limit, cursor=args.cursor, where=where)
    except BadCursor as e:
        raise Failed(f"--cursor: {e}", EXIT_USAGE) from None
    if args.json:
        _print_json({"items": [view.model_dump(mode="json") for view in views], "next": cursor})
        return
    table = _table("id", "kind", "status", "queue", "owner", "enqueued", "try", "error")
    for view in views:
        error = f"{view.error.type}: {view.error.message}" if view.error else ""
        table.add_row(
            view.id,
            view.name,
            _status(view.status),
            view.queue,
            view.owner or "-",
            relative(view.enqueued_at),
            str(view.attempt),
            error[:60],
        )
    console = _console()
    console.print(table)
    if cursor:
        console.print(f"more: --cursor {cursor}", style="dim")


async def jobs_show(jobs: Jobs, args: argparse.Namespace) -> None:
    view = (await read_snapshot(jobs.redis, args.id)).detail(OPERATOR)
    if args.json:
        _print_json(view.model_dump(mode="json"))
        return
    table = _table("", "")
    table.show_header = False
    rows = [
        ("id", view.id),
        ("kind", view.name),
        ("status", _status(view.status)),
        ("queue", view.queue),
        ("owner", view.owner or "-"),
        ("enqueued", relative(view.enqueued_at)),
        ("scheduled for", relative(view.scheduled_for)),
        ("started", relative(view.started_at)),
        ("finished", relative(view.finished_at)),
        ("tries", str(view.attempt)),
        ("worker", view.worker or "-"),
    ]
    if view.progress is not None:
        rows.append(("progress", f"{view.progress.current} / {view.progress.total}"))
    rows.append(("args", orjson.dumps(view.args).decode() if view.args is not None else "-"))
    if view.status is Status.SUCCESS:
        rows.append(("result", orjson.dumps(view.result).decode()))
    if view.error is not None:
        rows.append(("error", f"{view.error.type}: {view.error.message}"))
    for name, value in rows:
        table.add_row(f"[bold]{name}[/]", value)
    console = _console()
    console.print(table)
    for attempt in view.tries or []:
        failed = f": {attempt.error}" if attempt.error else ""
        console.print(f"  try {attempt.attempt}: {relative(attempt.started_at)} on {attempt.worker or '-'}{failed}")
    if view.error is not None and view.error.traceback:
        console.print(view.error.traceback, style="dim", markup=False)


async def jobs_retry(jobs: Jobs, args: argparse.Namespace) -> None:
    handle = await jobs.retry(args.id)
    _answer(args, {"id": args.id, "retried_as": handle.id}, handle.id)


async def jobs_abort(jobs: Jobs, args: argparse.Namespace) -> None:
    status = await jobs.abort(args.id)
    _answer(args, {"id": args.id, "status": status}, status)


async def jobs_retry_failed(jobs: Jobs, args: argparse.Namespace) -> None:
    if args.kind is not None and args.kind not in jobs.kinds:
        raise Failed(f"no job kind named {args.kind!r}", EXIT_NOT_FOUND)
    retried = await jobs.retry_failed(args.kind)
    _answer(args, {"retried": retried}, f"{retried} failed job(s) queued again")


async def queues_list(jobs: Jobs, args: argparse.Namespace) -> None:
    queues, _ = await read_queues(jobs.redis, queues_of(jobs.kinds))
    if args.json:
        # "depth": the contract's word for the jobs due (waiting or running); "paused" comes with flow control.
        _print_json({"items": [{**asdict(q), "depth": q.due} for q in queues]})
        return
    table = _table("queue", "waiting", "running", "scheduled", "oldest waiting", "workers")
    for q in queues:
        workers = str(q.workers) if q.workers else "[red]0[/]"
        table.add_row(q.name, str(q.waiting), str(q.running), str(q.scheduled), _duration(q.oldest_due_s), workers)
    _console().print(table)


async def kinds_list(jobs: Jobs, args: argparse.Namespace) -> None:
    kinds = list(jobs.kinds.values())
    if args.json:
        items = [
            {
                "name": kind.name,
                "description": kind.description,
                "queue": kind.queue,
                "max_tries": kind.max_tries,
                "timeout_s": kind.timeout_s,
                "schedule": kind.schedule,
                "owner_required": kind.owner_required,
                "internal": kind.internal,
                "input_schema": kind.input_schema(),
            }
            for kind in kinds
        ]
        _print_json({"items": items})
        return
    table = _table("kind", "queue", "tries", "timeout", "schedule", "description")
    for kind in kinds:
        timeout = "-" if kind.timeout_s is None else f"{kind.timeout_s:g} s"
        name = f"{kind.name} [dim](internal)[/]" if kind.internal else kind.name
        table.add_row(name, kind.queue, str(kind.max_tries), timeout, kind.schedule or "-", kind.description)
    _console().print(table)


async def workers_list(jobs: Jobs, args: argparse.Namespace) -> None:
    workers = await alive_workers(jobs.redis, datetime.now(UTC).timestamp())
    if args.json:
        _print_json({"items": workers})
        return
    table = _table("id", "host", "pid", "queues", "started", "running", "done", "last seen")
    for w in workers:
        table.add_row(
            w["id"],
            w["host"],
            str(w["pid"]),
            ",".join(w.get("queues", [])),
            relative(_from_ms(w["started_at"])),
            str(w["running"]),
            str(w["jobs_done"]),
            relative(_from_ms(w["last_seen"])),
        )
    console = _console()
    console.print(table)
    if not workers:
        console.print("no live worker", style="red")


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


# --- parsing -------------------------------------------------------------------------------------------------------


def _job_id(value: str) -> str:
    if not 1 <= len(value) <= 128:
        raise argparse.ArgumentTypeError("a job id is 1 to 128 characters")
    return value


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= number <= 100:
        raise argparse.ArgumentTypeError("1 to 100")
    return number


def build_parser() -> Parser:
    parser = Parser(prog="python -m service", description="The service's processes and the operator's commands.")
    nouns = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    nouns.add_parser("run", help="start a private Valkey server, one worker and the web app on :8000")
    token = nouns.add_parser("token", help="print a bearer token for USER_ID, signed with SECRET_KEY")
    token.add_argument("user_id")
    token.add_argument("--admin", action="store_true", help="the token may see and control every user's jobs")
    link = nouns.add_parser("signin-link", help="print a one-time link that signs USER_ID in to the dashboard")
    link.add_argument("user_id")
    link.add_argument("--admin", action="store_true")
    link.add_argument("--base-url", default="http://127.0.0.1:8000", help="where the web app answers")
    nouns.add_parser(
        "check", help="exit 0 if a worker process on this host is alive and its event loop answers (a container probe)"
    )

    output = Parser(add_help=False)
    output.add_argument("--json", action="store_true", help="JSON on stdout, for scripts")

    def verbs(noun: str, help_text: str) -> "argparse._SubParsersAction[Parser]":
        sub = nouns.add_parser(noun, help=help_text, description=help_text)
        return sub.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(group: "argparse._SubParsersAction[Parser]", name: str, command: Command, help_text: str) -> Parser:
        sub = group.add_parser(name, help=help_text, description=help_text, parents=[output])
        sub.set_defaults(run=command)
        return sub

    job_verbs = verbs("jobs", "list, show, retry and abort jobs")
    listing = verb(job_verbs, "list", jobs_list, "jobs newest first, filtered on the server")
    listing.add_argument("--status", type=Status, choices=list(Status), metavar="STATUS", help=", ".join(Status))
    listing.add_argument("--kind", help="jobs of this kind only")
    listing.add_argument("--queue", help="jobs of this queue only")
    listing.add_argument("--owner", help="this user's jobs only")
    listing.add_argument("--limit", type=_limit, default=20, help="1 to 100 (default 20)")
    listing.add_argument("--cursor", help="go on from where a previous page ended (it prints the cursor)")
    verb(job_verbs, "show", jobs_show, "everything about one job, with its arguments and traceback").add_argument(
        "id", type=_job_id
    )
    verb(job_verbs, "retry", jobs_retry, "run a FAILURE or REVOKED job again; prints the new job's id").add_argument(
        "id", type=_job_id
    )
    verb(job_verbs, "abort", jobs_abort, "abort a queued or running job").add_argument("id", type=_job_id)
    verb(job_verbs, "retry-failed", jobs_retry_failed, "run every failed job (kept for FAILED_TTL) again").add_argument(
        "--kind", help="only the failed jobs of this kind"
    )
    verb(verbs("queues", "the queues"), "list", queues_list, "each queue's due and scheduled jobs, and its workers")
    verb(verbs("kinds", "the kinds of job"), "list", kinds_list, "every kind of job the workers run")
    verb(verbs("workers", "the worker processes"), "list", workers_list, "the live worker processes")
    return parser


async def _run(command: Command, args: argparse.Namespace) -> None:
    async with Jobs() as jobs:
        await command(jobs, args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "check":
        from service.core.workers import check_local_workers
        from service.settings import get_settings

        ok, line = check_local_workers(get_settings().worker_check_dir)
        (sys.stdout if ok else sys.stderr).write(line + "\n")
        return 0 if ok else 1
    if args.command == "run":
        from service.dev.run import main as run

        return run()
    if args.command in ("token", "signin-link"):
        return _token(parser, args)
    # The operator's commands sign no token: the development key's warning is not theirs to give.
    logging.getLogger("service.settings").setLevel(logging.ERROR)
    try:
        asyncio.run(_run(args.run, args))
    except (JobNotFound, JobStateConflict) as e:
        sys.stderr.write(f"{e}\n")
        return EXIT_NOT_FOUND
    except Failed as e:
        sys.stderr.write(f"{e}\n")
        return e.status
    except (RedisUnavailable, RedisConnectionError, RedisTimeoutError) as e:
        sys.stderr.write(f"Redis did not answer: {e} (REDIS_URL, or REDIS_SENTINELS)\n")
        return EXIT_UNAVAILABLE
    except BrokenPipeError:  # `... | head`: the reader has gone, and that is fine
        sys.stderr.close()
    return EXIT_OK


def _token(parser: Parser, args: argparse.Namespace) -> int:
    from service.auth import create_token
    from service.settings import get_settings

    if not valid_user_id(args.user_id):
        parser.error("USER_ID: 1-64 characters of A-Z a-z 0-9 _ . @ + = -, not starting with a dot")
    if args.command == "signin-link":
        from service.dev.run import signin_link

        fragment = signin_link(get_settings(), args.user_id, admin=args.admin)
        sys.stdout.write(f"{args.base_url.rstrip('/')}/dashboard#{fragment}\n")
        return 0
    sys.stdout.write(create_token(args.user_id, get_settings().secret_key, admin=args.admin) + "\n")
    return 0
