"""Bearer tokens on the API's routes: who is calling (``CurrentUser``) and with which role (``Admin``, ``Service``).

The tokens themselves (HS256 JWTs: ``sub`` is the user id, ``roles`` grants admin/service
routes; a token of another ``purpose``, such as an unsubscribe link, is refused) are made
and read in ``notiflow.tokens``; here a refusal becomes a 401 a person can act on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from notiflow.tokens import InvalidToken, Principal, read_api_token
from programs.api.deps import AppSettings
from programs.api.schemas import Error

ADMIN = "admin"
SERVICE = "service"

bearer_scheme = HTTPBearer(
    auto_error=False,
    description='A JWT signed with NOTIFLOW_JWT_SECRET (HS256): `sub` = user id, `roles` = e.g. ["admin"]. '
    "`notiflow dev` prints demo tokens.",
)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def authenticate(secret: str, token: str) -> Principal:
    """The token's principal, or 401 saying what is wrong with the token."""
    try:
        return read_api_token(secret, token)
    except InvalidToken as exc:
        raise _unauthorized(str(exc)) from None


#: For /docs: what routes behind a token may answer besides their own responses.
#: OpenAPI ``responses`` entries, typed as FastAPI takes them.
Responses = dict[int | str, dict[str, Any]]

SIGNED_IN_ERRORS: Responses = {401: {"model": Error, "description": "no bearer token, or a bad or expired one"}}
ROLE_ERRORS: Responses = {
    **SIGNED_IN_ERRORS,
    403: {"model": Error, "description": "the token lacks the role this route needs"},
}

BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
NO_TOKEN = "no bearer token: send the header Authorization: Bearer <JWT>"


async def current_principal(settings: AppSettings, credentials: BearerCredentials) -> Principal:
    if credentials is None:
        raise _unauthorized(NO_TOKEN)
    return authenticate(settings.jwt_secret, credentials.credentials)


async def stream_principal(
    settings: AppSettings,
    credentials: BearerCredentials,
    access_token: Annotated[
        str | None, Query(description="the bearer token, for browsers' EventSource, which cannot set headers")
    ] = None,
) -> Principal:
    if credentials is not None:
        return authenticate(settings.jwt_secret, credentials.credentials)
    if access_token:
        return authenticate(settings.jwt_secret, access_token)
    raise _unauthorized(NO_TOKEN + " or add ?access_token=<JWT>")


def require_role(role: str) -> Callable[..., Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if role not in principal.roles:
            held = ", ".join(sorted(principal.roles)) or "none"
            raise HTTPException(403, f"this route needs the {role!r} role; your token's roles: {held}")
        return principal

    return check


CurrentUser = Annotated[Principal, Depends(current_principal)]
StreamUser = Annotated[Principal, Depends(stream_principal)]
Admin = Annotated[Principal, Depends(require_role(ADMIN))]
Service = Annotated[Principal, Depends(require_role(SERVICE))]
