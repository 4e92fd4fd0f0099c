"""Bearer tokens: signed JWTs (HS256, PyJWT) naming a user and whether they are an admin. No FastAPI here."""

import re
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
TOKEN_TTL_S = 30 * 24 * 3600
# User ids name a folder under DATA_DIR/reports/: no slash, no leading dot, nothing a shell or path would read.
USER_ID_PATTERN = re.compile(r"[A-Za-z0-9_@+=-][A-Za-z0-9_.@+=-]{0,63}")


class InvalidToken(Exception):
    """Missing, malformed, expired, or signed with another key."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    admin: bool = False

    def may_see(self, owner: str | None) -> bool:
        return owner is None or self.admin or owner == self.id


def valid_user_id(user_id: str) -> bool:
    return USER_ID_PATTERN.fullmatch(user_id) is not None


def create_token(user_id: str, secret_key: str, *, admin: bool = False, ttl_s: int = TOKEN_TTL_S) -> str:
    if not valid_user_id(user_id):
        raise ValueError(f"user id {user_id!r} must match {USER_ID_PATTERN.pattern}")
    now = int(time.time())
    claims = {"sub": user_id, "adm": admin, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret_key, algorithm=ALGORITHM)


def verify_token(token: str, secret_key: str) -> User:
    try:
        claims = jwt.decode(token, secret_key, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.PyJWTError as e:
        raise InvalidToken(str(e)) from e
    user_id, admin = claims.get("sub"), claims.get("adm", False)
    if not isinstance(user_id, str) or not valid_user_id(user_id) or not isinstance(admin, bool):
        raise InvalidToken("malformed claims")
    return User(id=user_id, admin=admin)
