"""JSON on both sides: values round-trip, exceptions keep only type and message, pickles never load."""

import asyncio
import pickle

import orjson
import pytest
from arq.jobs import JobDef, deserialize_job, serialize_job
from hypothesis import given
from hypothesis import strategies as st

from service.core.failures import UNEXPECTED, PermanentFailure
from service.core.serialization import job_deserializer, job_serializer

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_round_trip(value: object) -> None:
    assert job_deserializer(job_serializer(value)) == value


def test_exceptions_keep_type_and_a_safe_message_only() -> None:
    try:
        raise PermanentFailure("mailbox unavailable")
    except PermanentFailure as e:
        encoded = job_deserializer(job_serializer({"r": e}))
    assert encoded == {"r": {"type": "PermanentFailure", "message": "mailbox unavailable"}}
    assert job_deserializer(job_serializer(asyncio.CancelledError())) == {
        "type": "CancelledError",
        "message": "the job was aborted",
    }


def test_unexpected_errors_hide_their_message() -> None:
    # An arbitrary exception's message may hold paths, arguments or secrets: only its type is kept.
    secret = FileNotFoundError(2, "No such file", "/srv/secret/password.txt")
    assert job_deserializer(job_serializer(secret)) == {"type": "FileNotFoundError", "message": UNEXPECTED}


def test_arq_job_definition_round_trip() -> None:
    raw = serialize_job("run_sleep_task", (), {"task_type": 2}, None, 1_700_000_000_000, serializer=job_serializer)
    job = deserialize_job(raw, deserializer=job_deserializer)
    assert isinstance(job, JobDef)
    assert (job.function, job.kwargs) == ("run_sleep_task", {"task_type": 2})


class Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pickle ran",))


def test_a_planted_pickle_is_refused_not_run() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        job_deserializer(pickle.dumps(Boom()))


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TypeError):
        job_serializer(object())
