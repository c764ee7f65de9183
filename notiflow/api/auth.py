"""Bearer JWT (HS256, ``NOTIFLOW_JWT_SECRET``): ``sub`` is the user id, ``roles`` grants admin/service routes.

Tokens carrying another ``purpose`` (unsubscribe links are JWTs signed with the
same secret) are refused, so a link from an e-mail never logs anyone in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from notiflow.api.deps import AppSettings
from notiflow.api.schemas import Error

PURPOSE = "api"
ADMIN = "admin"
SERVICE = "service"

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A JWT signed with NOTIFLOW_JWT_SECRET (HS256): `sub` = user id, `roles` = e.g. [\"admin\"]. "
    "`notiflow dev` prints demo tokens.",
)


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[str]


def make_token(secret: str, user_id: str, roles: list[str] | tuple[str, ...], ttl: int | timedelta) -> str:
    """A bearer token for ``user_id`` valid for ``ttl`` (seconds or a timedelta)."""
    now = datetime.now(timezone.utc)
    lifetime = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
    claims = {
        "sub": user_id,
        "roles": list(roles),
        "purpose": PURPOSE,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def read_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise _unauthorized("bearer token has expired; get a new one") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _unauthorized(f"bearer token lacks the {exc.claim!r} claim; tokens need sub (user id) and exp") from None
    except jwt.PyJWTError as exc:
        raise _unauthorized(
            f"bearer token is not valid ({exc}); it must be a JWT signed with NOTIFLOW_JWT_SECRET"
        ) from None
    if claims.get("purpose", PURPOSE) != PURPOSE:
        raise _unauthorized(f"this token is for {claims['purpose']!r}, not for calling the API")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise _unauthorized("bearer token's roles claim must be a list of strings")
    return Principal(user_id=str(claims["sub"]), roles=frozenset(roles))


#: For /docs: what routes behind a token may answer besides their own responses.
SIGNED_IN_ERRORS = {401: {"model": Error, "description": "no bearer token, or a bad or expired one"}}
ROLE_ERRORS = {**SIGNED_IN_ERRORS, 403: {"model": Error, "description": "the token lacks the role this route needs"}}

BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
NO_TOKEN = "no bearer token: send the header Authorization: Bearer <JWT>"


async def current_principal(settings: AppSettings, credentials: BearerCredentials) -> Principal:
    if credentials is None:
        raise _unauthorized(NO_TOKEN)
    return read_token(settings.jwt_secret, credentials.credentials)


async def stream_principal(
    settings: AppSettings,
    credentials: BearerCredentials,
    access_token: Annotated[
        str | None, Query(description="the bearer token, for browsers' EventSource, which cannot set headers")
    ] = None,
) -> Principal:
    if credentials is not None:
        return read_token(settings.jwt_secret, credentials.credentials)
    if access_token:
        return read_token(settings.jwt_secret, access_token)
    raise _unauthorized(NO_TOKEN + " or add ?access_token=<JWT>")


def require_role(role: str) -> Callable[..., Principal]:
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
