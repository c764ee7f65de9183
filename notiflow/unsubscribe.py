"""Signed one-click unsubscribe tokens (RFC 8058 links carry them; no login needed).

A token names one user × notification type × channel and expires; it is a
JWT (HS256) signed with ``NOTIFLOW_JWT_SECRET`` and a purpose claim so that it
can never be used as an API bearer token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt

PURPOSE = "unsubscribe"
TOKEN_LIFETIME = timedelta(days=60)


class InvalidUnsubscribeToken(ValueError):
    pass


@dataclass(frozen=True)
class UnsubscribeRequest:
    user_id: str
    notification_type: str
    channel: str


def make_token(secret: str, request: UnsubscribeRequest, *, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    claims = {
        "purpose": PURPOSE,
        "sub": request.user_id,
        "type": request.notification_type,
        "channel": request.channel,
        "iat": int(now.timestamp()),
        "exp": int((now + TOKEN_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def read_token(secret: str, token: str) -> UnsubscribeRequest:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise InvalidUnsubscribeToken("this unsubscribe link has expired; change your preferences in the app") from None
    except jwt.PyJWTError:
        raise InvalidUnsubscribeToken("this unsubscribe link is not valid (it may have been altered)") from None
    if claims.get("purpose") != PURPOSE:
        raise InvalidUnsubscribeToken("this is not an unsubscribe link")
    return UnsubscribeRequest(claims["sub"], claims["type"], claims["channel"])


def unsubscribe_url(api_base_url: str, secret: str, request: UnsubscribeRequest) -> str:
    return f"{api_base_url.rstrip('/')}/api/v1/notifications/unsubscribe/{make_token(secret, request)}"
