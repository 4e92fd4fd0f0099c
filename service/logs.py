"""Logging set-up: one JSON object per line, so a log shipper can parse what web and workers say."""

import logging
import sys
from typing import TextIO

from pythonjsonlogger.orjson import OrjsonFormatter

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonLinesHandler(logging.StreamHandler[TextIO]):
    """Writes each record to stderr as one JSON object; extra= fields become keys of their own."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        # python-json-logger's orjson flavour: 17 us a line here against 24 us with the json module's.
        self.setFormatter(OrjsonFormatter(FORMAT, rename_fields={"asctime": "time", "levelname": "level"}))


def configure_logging(level: int = logging.INFO) -> None:
    """Send the `service` loggers' records to stderr as JSON lines; idempotent; arq's and uvicorn's stay as they are."""
    logger = logging.getLogger("service")
    if not any(isinstance(h, JsonLinesHandler) for h in logger.handlers):
        logger.addHandler(JsonLinesHandler())
    logger.setLevel(level)
    # No format here or in arq's or uvicorn's uses the caller's file and line, thread or process names; skipping
    # them is the logging HOWTO's own optimisation, and a busy worker spent a tenth of its time making records.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


# arq's INFO line at each job's start ("→ id:name(arguments)") and success ("← id:name ● result").
ARQ_JOB_LINES = frozenset({"%6.2fs → %s(%s)%s", "%6.2fs ← %s ● %s"})


class WithoutArqJobLines(logging.Filter):
    """Drops arq's per-job start and success lines: each job's "job ended" line (`service.engine.runtime`) says
    the same as structured JSON, and arq's write the job's arguments and result into the log (e-mail addresses,
    say). Its retry, abort and cancellation lines and everything it logs at WARNING or above stay.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in ARQ_JOB_LINES


def quiet_arq_job_lines() -> None:
    """Install `WithoutArqJobLines` on arq's worker logger; idempotent. (arq's CLI reconfigures its loggers'
    levels and handlers after importing the worker settings, but leaves filters alone.)"""
    logger = logging.getLogger("arq.worker")
    if not any(isinstance(f, WithoutArqJobLines) for f in logger.filters):
        logger.addFilter(WithoutArqJobLines())
