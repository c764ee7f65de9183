"""A local Web Push service on a real TCP port that checks what a real one (FCM, Mozilla autopush) would.

Each request must carry a VAPID ``Authorization: vapid t=<JWT>, k=<key>`` (RFC 8292) whose ES256 signature
verifies with ``k`` — the server's configured public key —, whose ``aud`` is this service's origin, whose
``exp`` is in the future and at most 24 h away, and whose ``sub`` is a ``mailto:`` or ``https:`` URL; a
``TTL``; and an ``aes128gcm`` body (RFC 8291) that decrypts with the subscription's private key and auth
secret, made here as a browser makes them (``Browser``). Refusals are 400/401/403 saying what is wrong;
otherwise it answers from a script per endpoint (``replies``) or 201 with a ``Location``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notiflow.vapid import b64url, b64url_decode

REASONS = {
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    410: "Gone",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
_VAPID = re.compile(r"^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_\-]+)$")


@dataclass
class Browser:
    """A subscription as a browser makes it: a P-256 key pair and a 16-byte auth secret, and its endpoint."""

    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(
            self.key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def json(self) -> dict:
        """``PushSubscription.toJSON()``."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)},
        }


@dataclass
class Push:
    endpoint: str
    payload: dict
    headers: dict[str, str]
    claims: dict
    at: float


@dataclass
class Scripted:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class PushService:
    def __init__(self, vapid_public_key: str) -> None:
        self.vapid_public_key = vapid_public_key
        self.browsers: dict[str, Browser] = {}  # by path
        self.replies: dict[str, list[Scripted]] = {}  # by path
        self.attempts: list[tuple[str, float]] = []  # every request: (path, when)
        self.refusals: list[str] = []
        self.messages: list[Push] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def browser(self) -> Browser:
        path = f"/wpush/v2/{uuid.uuid4().hex}"
        browser = Browser(endpoint=self.origin + path)
        self.browsers[path] = browser
        return browser

    def script(self, browser: Browser, *replies: Scripted) -> None:
        self.replies.setdefault(browser.endpoint.removeprefix(self.origin), []).extend(replies)

    async def __aenter__(self) -> PushService:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def _check(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, Push | None]:
        browser = self.browsers.get(path)
        if browser is None:
            return 404, "no such subscription", None
        match = _VAPID.match(headers.get("authorization", ""))
        if not match:
            return 401, "expected Authorization: vapid t=…, k=…", None
        token, key = match.groups()
        if key != self.vapid_public_key:
            return 403, "k is not the key this subscription was made with (applicationServerKey)", None
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
        try:
            claims = jwt.decode(
                token, public, algorithms=["ES256"], audience=self.origin, options={"require": ["aud", "exp", "sub"]}
            )
        except jwt.PyJWTError as exc:
            return 403, f"VAPID JWT refused: {exc}", None
        if claims["exp"] > time.time() + 24 * 3600:
            return 403, "VAPID JWT exp more than 24 h away", None
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return 403, "VAPID sub must be a mailto: or https: URL", None
        if headers.get("content-encoding") != "aes128gcm":
            return 400, "Content-Encoding must be aes128gcm", None
        if not headers.get("ttl", "").isdigit():
            return 400, "missing TTL", None
        if len(body) > 4096:
            return 413, "payload too large", None
        try:
            plain = http_ece.decrypt(body, private_key=browser.key, auth_secret=browser.auth, version="aes128gcm")
        except Exception as exc:  # what the browser would do: drop a message it cannot decrypt
            return 400, f"cannot decrypt: {exc!r}", None
        return 201, "", Push(browser.endpoint, json.loads(plain), headers, claims, time.monotonic())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.attempts.append((path, time.monotonic()))
                status, answer, push = self._check(path, headers, body)
                extra: dict[str, str] = {}
                if status != 201:
                    self.refusals.append(f"{status} {answer}")
                elif self.replies.get(path):
                    scripted = self.replies[path].pop(0)
                    status, answer, extra = scripted.status, scripted.body, scripted.headers
                if status == 201 and push is not None:
                    self.messages.append(push)
                    extra = {"Location": f"{self.origin}/m/{len(self.messages)}", **extra}
                payload = answer.encode()
                head_out = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                writer.write(
                    f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
                    f"Content-Type: text/plain\r\nContent-Length: {len(payload)}\r\n{head_out}\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
