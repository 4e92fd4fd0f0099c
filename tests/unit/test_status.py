"""The one table that maps arq's state to the contract's status words."""

from typing import Any

import pytest

from service.core.status import TERMINAL_STATUSES, ArqState, Status, contract_status

QUEUED: dict[str, Any] = {"has_definition": True, "in_progress": False, "queued": True, "tries_started": 0}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (ArqState(**QUEUED), Status.PENDING),
        (ArqState(**{**QUEUED, "tries_started": 1}), Status.RETRY),
        (ArqState(**{**QUEUED, "in_progress": True, "tries_started": 1}), Status.STARTED),
        (ArqState(has_definition=True, in_progress=False, queued=False, tries_started=0), Status.PENDING),
        (
            ArqState(has_definition=False, in_progress=False, queued=False, tries_started=0, success=True),
            Status.SUCCESS,
        ),
        (
            ArqState(
                has_definition=False,
                in_progress=False,
                queued=False,
                tries_started=0,
                success=False,
                error_type="ValueError",
            ),
            Status.FAILURE,
        ),
        (
            ArqState(
                has_definition=False,
                in_progress=False,
                queued=False,
                tries_started=0,
                success=False,
                error_type="CancelledError",
            ),
            Status.REVOKED,
        ),
        (
            ArqState(
                has_definition=False,
                in_progress=False,
                queued=False,
                tries_started=0,
                success=False,
                error_type="JobAborted",
            ),
            Status.REVOKED,
        ),
        # A result wins over a stale in-progress key (arq deletes it in the same transaction, but be sure).
        (ArqState(has_definition=False, in_progress=True, queued=False, tries_started=0, success=True), Status.SUCCESS),
        (ArqState(has_definition=False, in_progress=False, queued=False, tries_started=0), None),
    ],
)
def test_contract_status(state: ArqState, expected: Status | None) -> None:
    assert contract_status(state) == expected


def test_terminal_statuses_are_the_contracts() -> None:
    assert {s.value for s in TERMINAL_STATUSES} == {"SUCCESS", "FAILURE", "REVOKED"}
    assert [s.value for s in Status] == ["PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED"]
