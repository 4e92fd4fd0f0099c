"""Helpers for integration tests: tokens and auth headers."""

from service.auth import create_token
from service.settings import Settings


def auth(settings: Settings, user_id: str, *, admin: bool = False, ttl_s: int = 3600) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(user_id, settings.secret_key, admin=admin, ttl_s=ttl_s)}"}
