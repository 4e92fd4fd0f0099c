"""Job kinds: each one file, declared once with `@job_kind` (`service.kinds.declare`).

A team adds its own kind in a module of its own and names that module once: in `KIND_MODULES` below, or in the
`JOB_KINDS` environment variable (comma-separated module names) without touching this package. The web app and the
workers both load the same list (`load_kinds`), so the API, the page, the dashboard, the metrics and the arq
functions all come from the same declarations.
"""

import importlib
from collections.abc import Iterable
from typing import Any

from service.core.failures import PermanentFailure, TransientFailure
from service.kinds.context import JobContext
from service.kinds.declare import REGISTRY, Backoff, Kind, job_kind

# The kinds this service ships with; add a module of yours here (one line) or to JOB_KINDS.
KIND_MODULES = (
    "service.kinds.tasks",
    "service.kinds.notifications",
    "service.kinds.reports",
)

Kinds = dict[str, Kind[Any, Any]]


def load_kinds(extra_modules: Iterable[str] = ()) -> Kinds:
    """Import the kinds' modules and return their kinds by name, in declaration order."""
    modules = [*KIND_MODULES, *(m for m in extra_modules if m not in KIND_MODULES)]
    for module in modules:
        importlib.import_module(module)
    wanted = set(modules)
    return {name: kind for name, kind in REGISTRY.items() if kind.module in wanted}


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
]
