"""Trading a one-time sign-in code (`service.core.signin`) for the bearer token it stands for."""

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from service.auth import InvalidToken, verify_token
from service.core import signin
from service.core.exceptions import NotAuthenticated
from service.web.deps import ArqDep, SettingsDep
from service.web.schemas import ErrorDetailOut

router = APIRouter(prefix="/auth", tags=["auth"])


class SignInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=16, max_length=64, pattern="^[A-Za-z0-9_-]+$")]


class SignInOut(BaseModel):
    token: str
    user: str
    admin: bool


@router.post("/exchange", responses={401: {"model": ErrorDetailOut}})
async def exchange_code(body: SignInIn, arq: ArqDep, settings: SettingsDep) -> SignInOut:
    """The bearer token a one-time sign-in link stands for; the link works once, for ten minutes."""
    token = await signin.redeem(arq, body.code)
    if token is None:
        raise NotAuthenticated(
            "this sign-in link was already used or has expired; get a new one with "
            "`python -m service signin-link USER --admin` (make run prints one as it starts)"
        )
    try:
        user = verify_token(token, settings.secret_key)
    except InvalidToken as e:  # signed with a SECRET_KEY since replaced
        raise NotAuthenticated("this sign-in link is no longer valid", invalid=True) from e
    return SignInOut(token=token, user=user.id, admin=user.admin)
