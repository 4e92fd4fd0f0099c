"""The arq versions this worker was tested with, and the arq code it relies on.

`ServiceWorker` overrides one method of arq's that is not public (`Worker._poll_iteration`) and depends on how a
few others behave (`service/engine/worker.py` says which and why; docs/operations.md lists what each buys). So it
refuses to start on an arq version it was not tested with, with an error that names the version, rather than
failing at the first job; and `tests/unit/test_arq_seam.py` fails when the source of any of these methods changes,
so a new arq release is looked at before the pin moves.
"""

import hashlib
import inspect

import arq
import arq.worker

TESTED_ARQ_VERSIONS = frozenset({"0.28.0"})

# What the worker relies on, with the SHA-256 of its source in the tested version.
RELIED_ON = {
    # Replaced: the take script claims every due job the worker has room for in one round trip.
    "Worker._poll_iteration": "f8d39d823a0a59f27a45f1c0e80bee44e16219d5072235fbc81866402298322f",
    # Mirrored by the replacement: a job's task, arq's counter, `tasks` (what the replacement starts them as).
    "Worker.start_jobs": "b45797cfa40bed7fe6e9b8b8100c5f5b4144fe85112155c4e355df6ed8521f5f",
    # Its start transaction, the ctx it builds, `job_tasks`/`aborting_tasks` for aborts, its hooks' order.
    "Worker.run_job": "589a19059ff84ee777552dc9fa5ff76b17d6d0d7f99716d2720a2ed07ccb9607",
    # Replaced, on the job's own queue: the claim (the in-progress key) that the take script set goes, the job leaves
    # its queue or is rescheduled on it.
    "Worker.finish_failed_job": "3e16087f318a7acfbe79189a682d732fc43a3fce1917689e96990cb14d30bee2",
    "Worker.finish_job": "903f09c92830d3fd8044e19cc409074d9b62143218f73c3101a1ef5f724b22ce",
    # The loop that calls `_poll_iteration`, `on_startup` and the burst exit.
    "Worker.main": "45ca1591c9717466eec76e17fa958f84acf6085103d692a84ee25d9904e7f8fc",
    # Deletes `health_check_key` (the override of `close` renames it first) and calls `on_shutdown`.
    "Worker.close": "5bcc9cb35668082910200a680f052cc5d36a8ce3b3c04a95ef32c14ebd7daaa1",
    "Worker.record_health": "108f4b8686c9402d52162af9db7e738df0627c6baf939cbb114ac298ac1c5d4f",
    "Worker.heart_beat": "2e9959bea66dc551c78ecf8dd03640a086bb64a0601f9bfb74b5f89b11365224",
}


class UntestedArqVersion(RuntimeError):
    """arq is at a version this worker was not tested with."""


def check_arq_version(version: str = arq.VERSION) -> None:
    if version not in TESTED_ARQ_VERSIONS:
        tested = ", ".join(sorted(TESTED_ARQ_VERSIONS))
        raise UntestedArqVersion(
            f"arq {version} is installed, but this service's worker was tested with arq {tested} only: it overrides "
            "arq's Worker._poll_iteration (service/engine/worker.py). Install a tested version (pyproject.toml pins "
            "it), or check the override against the new release and add the version to TESTED_ARQ_VERSIONS in "
            "service/engine/compat.py."
        )


def arq_class(name: str) -> type:
    """arq's own class, even once the settings module has bound `arq.worker.Worker` to the subclass."""
    bound: type = getattr(arq.worker, name)
    return next(c for c in bound.__mro__ if c.__module__ == "arq.worker" and c.__name__ == name)


def source_fingerprints() -> dict[str, str]:
    """The SHA-256 of the installed arq's source of each method in RELIED_ON."""
    found = {}
    for name in RELIED_ON:
        owner, _, attribute = name.partition(".")
        source = inspect.getsource(getattr(arq_class(owner), attribute))
        found[name] = hashlib.sha256(source.encode()).hexdigest()
    return found
