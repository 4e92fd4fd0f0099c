"""Bearer tokens: signed, expiring, and never trusted when forged."""

import jwt
import pytest

from service.auth import InvalidToken, User, create_token, valid_user_id, verify_token

KEY = "k" * 48


def test_round_trip() -> None:
    assert verify_token(create_token("alice", KEY), KEY) == User("alice", admin=False)
    assert verify_token(create_token("root", KEY, admin=True), KEY) == User("root", admin=True)


@pytest.mark.parametrize(
    "token",
    [
        create_token("alice", "another-key-" + "x" * 40),  # forged with another key
        create_token("alice", KEY, ttl_s=-1),  # expired
        jwt.encode({"sub": "alice"}, KEY, algorithm="HS256"),  # no expiry
        jwt.encode({"sub": "../../etc", "exp": 2**40}, KEY, algorithm="HS256"),  # a path as user id
        jwt.encode({"sub": "alice", "adm": "yes", "exp": 2**40}, KEY, algorithm="HS256"),
        jwt.encode({"sub": "alice", "adm": True, "exp": 2**40}, None, algorithm="none"),  # unsigned
        "not.a.token",
        "",
    ],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify_token(token, KEY)


@pytest.mark.parametrize(
    ("user_id", "ok"),
    [
        ("alice", True),
        ("a.b@c+d=e-f_g", True),
        ("=1+1", True),
        ("..", False),
        (".x", False),
        ("a/b", False),
        ("a:b", False),
        ("", False),
        ("x" * 65, False),
    ],
)
def test_user_ids_are_safe_folder_names(user_id: str, ok: bool) -> None:
    assert valid_user_id(user_id) is ok


def test_may_see() -> None:
    assert User("a").may_see("a") and User("a").may_see(None) and User("b", admin=True).may_see("a")
    assert not User("b").may_see("a")
