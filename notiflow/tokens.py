"""Every signed token notiflow issues: API bearer tokens and one-click unsubscribe links.

Both are JWTs (HS256) signed with ``NOTIFLOW_JWT_SECRET`` and carry a ``purpose`` claim,
so neither can stand in for the other: a link from an e-mail never logs anyone in, and an
API token unsubscribes nobody.

- API tokens: ``sub`` is the user id, ``roles`` grants admin/service routes
  (``make_api_token`` / ``read_api_token``; ``programs.api.auth`` turns a refusal into 401).
- Unsubscribe links (RFC 8058, no login): a token names one user × notification type ×
  channel and expires after ``UNSUBSCRIBE_LIFETIME`` (``make_unsubscribe_token`` /
  ``read_unsubscribe_token``, ``unsubscribe_url``).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt

API_PURPOSE = "api"
UNSUBSCRIBE_PURPOSE = "unsubscribe"
UNSUBSCRIBE_LIFETIME = timedelta(days=60)
_ALGORITHM = "HS256"


class InvalidToken(ValueError):
    """A token that cannot be used for what it was presented for; the message says why, for a person."""


class InvalidApiToken(InvalidToken):
    pass


class InvalidUnsubscribeToken(InvalidToken):
    pass


def _sign(secret: str, claims: dict[str, Any], now: datetime, lifetime: timedelta) -> str:
    stamped = claims | {"iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp())}
    return jwt.encode(stamped, secret, algorithm=_ALGORITHM)


def _decode(secret: str, token: str) -> dict[str, Any]:
    """The claims of a token signed with ``secret``; jwt's errors are left to the caller to word."""
    claims: dict[str, Any] = jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"require": ["sub", "exp"]})
    return claims


# ------------------------------------------------------------------ API bearer tokens


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[str]


def make_api_token(secret: str, user_id: str, roles: list[str] | tuple[str, ...], ttl: int | timedelta) -> str:
    """A bearer token for ``user_id`` valid for ``ttl`` (seconds or a timedelta)."""
    lifetime = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
    claims = {"sub": user_id, "roles": list(roles), "purpose": API_PURPOSE}
    return _sign(secret, claims, datetime.now(timezone.utc), lifetime)


def read_api_token(secret: str, token: str) -> Principal:
    """Who the bearer token speaks for; ``InvalidApiToken`` saying what is wrong with it otherwise.

    A token that verified is remembered (``_verified_api_token``, the last 4,096): the API reads each request's
    token twice (the client gate, then the route), and HS256 verification was a tenth of an inbox page's time
    (bench/inbox.py, profiled). Its expiry is checked again on every use; a token that failed is not remembered.
    """
    principal, expires_at = _verified_api_token(secret, token)
    if expires_at <= time.time():  # expired from the `exp` second on, as jwt.decode has it
        raise InvalidApiToken(_EXPIRED)
    return principal


_EXPIRED = "bearer token has expired; get a new one"


@functools.lru_cache(maxsize=4096)
def _verified_api_token(secret: str, token: str) -> tuple[Principal, float]:
    """The principal of a token that verifies now, and when it expires (raises, and is then not cached, otherwise)."""
    try:
        claims = _decode(secret, token)
    except jwt.ExpiredSignatureError:
        raise InvalidApiToken(_EXPIRED) from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidApiToken(
            f"bearer token lacks the {exc.claim!r} claim; tokens need sub (user id) and exp"
        ) from None
    except jwt.PyJWTError as exc:
        raise InvalidApiToken(
            f"bearer token is not valid ({exc}); it must be a JWT signed with NOTIFLOW_JWT_SECRET"
        ) from None
    if claims.get("purpose", API_PURPOSE) != API_PURPOSE:
        raise InvalidApiToken(f"this token is for {claims['purpose']!r}, not for calling the API")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidApiToken("bearer token's roles claim must be a list of strings")
    return Principal(user_id=str(claims["sub"]), roles=frozenset(roles)), float(claims["exp"])


# ------------------------------------------------------------------ unsubscribe links


@dataclass(frozen=True)
class UnsubscribeRequest:
    user_id: str
    notification_type: str
    channel: str
    #: the queue row the link was sent in (claim ``qid``), so that unsubscribing records UNSUBSCRIBED on it;
    #: tokens issued before it have none and work as before
    queue_id: str | None = None


def make_unsubscribe_token(secret: str, request: UnsubscribeRequest, *, now: datetime | None = None) -> str:
    claims = {
        "purpose": UNSUBSCRIBE_PURPOSE,
        "sub": request.user_id,
        "type": request.notification_type,
        "channel": request.channel,
    }
    if request.queue_id:
        claims["qid"] = request.queue_id
    return _sign(secret, claims, now or datetime.now(timezone.utc), UNSUBSCRIBE_LIFETIME)


def read_unsubscribe_token(secret: str, token: str) -> UnsubscribeRequest:
    try:
        claims = _decode(secret, token)
    except jwt.ExpiredSignatureError:
        raise InvalidUnsubscribeToken("this unsubscribe link has expired; change your preferences in the app") from None
    except jwt.PyJWTError:
        raise InvalidUnsubscribeToken("this unsubscribe link is not valid (it may have been altered)") from None
    if claims.get("purpose") != UNSUBSCRIBE_PURPOSE:
        raise InvalidUnsubscribeToken("this is not an unsubscribe link")
    qid = claims.get("qid")
    return UnsubscribeRequest(claims["sub"], claims["type"], claims["channel"], str(qid) if qid else None)


def unsubscribe_url(api_base_url: str, secret: str, request: UnsubscribeRequest) -> str:
    return f"{api_base_url.rstrip('/')}/api/v1/notifications/unsubscribe/{make_unsubscribe_token(secret, request)}"
