"""Every bad request gets a 4xx JSON `{"detail": ...}`; none gets a 500, and none enqueues anything."""

import json

import pytest
from arq.connections import ArqRedis
from httpx import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JSON = {"content-type": "application/json"}

BAD_BODIES = [
    b'{"type": NaN}',
    b'{"type": Infinity}',
    b'{"type": -Infinity}',
    b'{"type": 1e309}',
    b'{"type": "1"}',
    b'{"type": true}',
    b'{"type": 1.0}',
    b'{"type": 1.5}',
    b'{"type": 4}',
    b'{"type": -1}',
    b'{"type": 99999999999999999999999999999}',
    b'{"type": null}',
    b'{"type": [1]}',
    b'{"type": {"n": 1}}',
    b'{"type": 1, "extra": 2}',
    b"{}",
    b"[]",
    b"1",
    b'"type"',
    b"",
    b"{",
    b'{"type": 1',
    b"\xff\xfe\x00junk",
    b'{"type": "\xed\xa0\x80"}',
    b"type=1",
]


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_bad_task_bodies_are_422(client: AsyncClient, arq_pool: ArqRedis, body: bytes) -> None:
    response = await client.post("/tasks", content=body, headers=JSON)
    assert response.status_code == 422, (body, response.text)
    assert isinstance(response.json()["detail"], list)
    assert await arq_pool.zcard("arq:queue") == 0


@pytest.mark.parametrize("chunked", [False, True])
async def test_bodies_over_64_kib_are_413(client: AsyncClient, arq_pool: ArqRedis, chunked: bool) -> None:
    body = b'{"type": 1, "pad": "' + b"x" * 70_000 + b'"}'

    async def stream():  # no Content-Length: the limit must hold while the body streams in
        yield body[:40_000]
        yield body[40_000:]

    response = await client.post("/tasks", content=stream() if chunked else body, headers=JSON)
    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large"}
    assert await arq_pool.zcard("arq:queue") == 0


@pytest.mark.parametrize("path", ["/tasks/" + "a" * 3000, "/jobs/" + "a" * 3000])
async def test_very_long_ids_are_refused_with_json(client: AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "path"


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/tasks"), ("DELETE", "/tasks/x"), ("PUT", "/jobs/x"), ("GET", "/nope")]
)
async def test_unknown_routes_and_methods_are_json(client: AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)
    assert response.status_code in (404, 405)
    assert "detail" in response.json()


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3)
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(["type", "Type", "x"]), json_values, max_size=3).map(
        lambda d: json.dumps(d).encode()
    ),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
async def test_no_body_ever_gets_a_5xx(client: AsyncClient, body: bytes) -> None:
    response = await client.post("/tasks", content=body, headers=JSON)
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    valid = (
        isinstance(parsed, dict)
        and set(parsed) == {"type"}
        and type(parsed["type"]) is int
        and 0 <= parsed["type"] <= 3
    )
    assert response.status_code == (201 if valid else 422), (body, response.text)
    assert response.headers["content-type"] == "application/json"
