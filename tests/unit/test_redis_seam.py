"""The two connection classes of `service.core.connections` subclass redis-py's public ones, and rely on how their
`connect` behaves in the tested redis-py (5.3): this fails when that code changes, so a new release is read first."""

import hashlib
import inspect

from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import SentinelManagedConnection

from service.core.connections import PrimaryConnection, RetriedConnection

RELIED_ON = {
    # Retries the TCP connect only; the handshake after it is not (RetriedConnection retries both).
    "AbstractConnection.connect": "04fabbbd44943f6875728cdd7ddee686e6365dc19cbdcdba2860d8689f2d6d0f",
    # Asks the Sentinels, then connects under the connection's own retry (PrimaryConnection: one try per address).
    "SentinelManagedConnection.connect": "1ba5ea04207af629bf50630312105d6c6b561c83d0dbc7bc025a403faa5a1a46",
    "SentinelManagedConnection.connect_to": "36122a1c07eaeece28f4ea552c197967d8afc65b7b12547461298b1b00149b21",
    "SentinelManagedConnection._connect_retry": "62b751ba11735f9d4c64f558a2eb601a59b0af757ca73e4788edd5a220b385f5",
}


def _fingerprint(function: object) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()  # type: ignore[arg-type]


def test_the_redis_py_code_the_connections_rely_on_is_the_code_they_were_tested_with() -> None:
    found = {
        "AbstractConnection.connect": _fingerprint(AbstractConnection.connect),
        "SentinelManagedConnection.connect": _fingerprint(SentinelManagedConnection.connect),
        "SentinelManagedConnection.connect_to": _fingerprint(SentinelManagedConnection.connect_to),
        "SentinelManagedConnection._connect_retry": _fingerprint(SentinelManagedConnection._connect_retry),
    }
    assert found == RELIED_ON


def test_the_subclasses_override_only_connect_and_connect_to() -> None:
    assert {name for name in vars(RetriedConnection) if not name.startswith("__")} == set()
    assert "connect" in vars(RetriedConnection.__mro__[1])  # the mixin's
    assert {name for name in vars(PrimaryConnection) if not name.startswith("__")} == {"connect_to"}
