"""Job kinds: each one file, declared once with `@job_kind` (`service.kinds.declare`).

A team adds its own kind in a module of its own and names that module once: in `KIND_MODULES` below, or in the
`JOB_KINDS` environment variable (comma-separated module names) without touching this package. A `JOB_KINDS` entry
`module:function` names a plain function, declared on the spot (what `DurableTasks.add_task` takes). The web app and the
workers both load the same list (`load_kinds`), so the API, the page, the dashboard, the metrics and the arq
functions all come from the same declarations.
"""

import importlib
from collections.abc import Iterable
from typing import Any

from service.core.failures import PermanentFailure, TransientFailure
from service.kinds.context import JobContext
from service.kinds.declare import DEFAULT_QUEUE, REGISTRY, Backoff, Kind, job_kind
from service.kinds.functions import load_function

# The kinds this service ships with; add a module of yours here (one line) or to JOB_KINDS.
KIND_MODULES = (
    "service.kinds.tasks",
    "service.kinds.notifications",
    "service.kinds.reports",
    "service.kinds.webhooks",
)

Kinds = dict[str, Kind[Any, Any]]


def load_kinds(extra_modules: Iterable[str] = ()) -> Kinds:
    """Import the kinds' modules and return their kinds by name: module by module in the order given, each module's
    in declaration order (whichever module happened to be imported first)."""
    extra = list(extra_modules)
    modules = [*KIND_MODULES, *(m.partition(":")[0] for m in extra if m not in KIND_MODULES)]
    for module in modules:
        importlib.import_module(module)
    for entry in extra:
        if ":" in entry:  # a plain function, declared on the spot (`service.kinds.functions`)
            load_function(entry)
    order = {module: n for n, module in enumerate(modules)}
    declared = sorted(
        (kind for kind in REGISTRY.values() if kind.module in order), key=lambda kind: order[kind.module]
    )  # sorted() is stable: within a module, declaration order
    return {kind.name: kind for kind in declared}


def queues_of(kinds: Kinds) -> list[str]:
    """Every queue the kinds name: `default` first, then the others in the kinds' order (a worker's priorities when
    WORKER_QUEUES is not set)."""
    return list(dict.fromkeys([DEFAULT_QUEUE, *(kind.queue for kind in kinds.values())]))


__all__ = [
    "KIND_MODULES",
    "Backoff",
    "JobContext",
    "Kind",
    "Kinds",
    "PermanentFailure",
    "TransientFailure",
    "job_kind",
    "load_kinds",
    "queues_of",
]
