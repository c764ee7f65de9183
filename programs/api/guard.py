"""What every request meets before a route reads its body: who is calling, how often, and how much it sends.

Pure ASGI middlewares (not BaseHTTPMiddleware), so SSE streams pass through
untouched and nothing is buffered:

* ``ClientGate`` checks a bearer token (header, or ``?access_token=``) on token
  routes before a byte of the body is read, refuses a body sent without one, and
  limits each client — the token's subject, else the address — to
  ``NOTIFLOW_RATE_LIMIT_PER_MINUTE``, and each address to
  ``NOTIFLOW_AUTH_FAILURE_LIMIT_PER_MINUTE`` refused tokens (429 + Retry-After).
  The counters live in this process: with N API processes a client gets N times
  the limit.
* ``BodyLimit`` refuses a body over ``NOTIFLOW_MAX_BODY_BYTES`` (413): at once
  when Content-Length says so, else as soon as the streamed bytes pass it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from notiflow.settings import Settings
from programs.api.auth import NO_TOKEN, authenticate
from programs.api.unsubscribe import router as unsubscribe_router

#: Paths whose routes all need a bearer token; the unsubscribe link carries its own token in the path.
TOKEN_PREFIXES = ("/api/v1/", "/codec/")
PUBLIC_PREFIXES = (f"{unsubscribe_router.prefix}/",)


def needs_token(path: str) -> bool:
    return path.startswith(TOKEN_PREFIXES) and not path.startswith(PUBLIC_PREFIXES)


def has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


class TokenBuckets:
    """Per key: ``per_minute`` at once, refilled evenly over the minute. Idle keys are forgotten once full again."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, when counted)
        self._next_sweep = time.monotonic() + 60.0

    def take(self, key: str) -> float:
        """Spend one token: 0 when there was one, else the seconds until there is."""
        now = time.monotonic()
        if now >= self._next_sweep:
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60.0}
            self._next_sweep = now + 60.0
        tokens, counted = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - counted) * self.refill_per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.refill_per_second
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0


@dataclass(frozen=True)
class Caller:
    key: str  # the rate-limit bucket
    description: str  # for the 429 message


def _error(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _too_many(detail: str, wait: float) -> JSONResponse:
    seconds = max(1, math.ceil(wait))
    return _error(429, f"{detail}; retry after {seconds} s", {"Retry-After": str(seconds)})


def _presented_token(scope: Scope, headers: Headers) -> str | None:
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    tokens = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("access_token")
    return tokens[0] if tokens else None


class ClientGate:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.requests = TokenBuckets(settings.rate_limit_per_minute)
        self.auth_failures = TokenBuckets(settings.auth_failure_limit_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal, caller = self._check(scope)
        if refusal is None:
            wait = self.requests.take(caller.key)
            if wait:
                refusal = _too_many(
                    f"too many requests from {caller.description}: the limit is "
                    f"{self.settings.rate_limit_per_minute} a minute per client (NOTIFLOW_RATE_LIMIT_PER_MINUTE)",
                    wait,
                )
        await (refusal or self.app)(scope, receive, send)

    def _check(self, scope: Scope) -> tuple[JSONResponse | None, Caller]:
        """A refusal (bad token, or a body without one) or None, and who is calling."""
        address = scope["client"][0] if scope.get("client") else "unknown"
        anonymous = Caller(f"address:{address}", f"address {address}")
        if not needs_token(scope["path"]):
            return None, anonymous
        headers = Headers(scope=scope)
        token = _presented_token(scope, headers)
        if token is None:
            refusal = _error(401, NO_TOKEN, {"WWW-Authenticate": "Bearer"}) if has_body(headers) else None
            return refusal, anonymous
        try:
            principal = authenticate(self.settings.jwt_secret, token)
        except HTTPException as refused:
            wait = self.auth_failures.take(address)
            if wait:
                return _too_many(
                    f"too many refused bearer tokens from address {address}: the limit is "
                    f"{self.settings.auth_failure_limit_per_minute} a minute (NOTIFLOW_AUTH_FAILURE_LIMIT_PER_MINUTE)",
                    wait,
                ), anonymous
            return _error(refused.status_code, refused.detail, refused.headers), anonymous
        return None, Caller(f"subject:{principal.user_id}", f"token subject {principal.user_id}")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> str:
        return f"request body is over the limit of {self.max_bytes} bytes (NOTIFLOW_MAX_BODY_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _error(413, self._too_large())(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            """Raised inside the route's body read, so the app's own handlers answer the 413."""
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._too_large())
            return message

        await self.app(scope, counted, send)
