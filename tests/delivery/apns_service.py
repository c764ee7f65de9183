"""A local APNs on a real TCP port, speaking HTTP/2 (``h2``), checking what Apple checks.

``POST /3/device/<hex token>`` over HTTP/2 only (an HTTP/1.1 request is refused), with
``authorization: bearer <provider token>``: an ES256 JWT whose header ``kid`` is the team's key id, that
verifies with that key's public half, whose ``iss`` is the team id and whose ``iat`` is neither in the
future nor over an hour old (403 ``InvalidProviderToken`` / ``ExpiredProviderToken``); ``apns-topic`` the
app's bundle id (400 ``TopicDisallowed``), ``apns-push-type`` ``alert`` (``InvalidPushType``),
``apns-priority`` 5 or 10 (``BadPriority``), ``apns-collapse-id`` at most 64 bytes (``BadCollapseId``),
``apns-expiration`` a number (``BadExpirationDate``) and a JSON body with an ``aps`` alert of at most 4 KiB.
A token in ``unregistered`` gets 410 ``Unregistered``; a scripted answer per token comes next; otherwise 200
with an ``apns-id``. Refusals are kept in ``refusals``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from programs.dev.h2server import DualServer, Request

TEAM_ID = "TEAM123456"
KEY_ID = "KEY7890ABC"
TOPIC = "test.notiflow.tracker"


@dataclass
class ApnsPush:
    token: str
    payload: dict
    headers: dict[str, str]
    claims: dict
    version: str
    at: float


@dataclass
class Scripted:
    status: int
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class ApnsService:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.unregistered: set[str] = set()
        self.replies: dict[str, list[Scripted]] = {}
        self.attempts: list[tuple[str, float]] = []
        self.refusals: list[str] = []
        self.messages: list[ApnsPush] = []
        self.provider_tokens: set[str] = set()
        self._server = DualServer(self._handle)

    @property
    def url(self) -> str:
        return self._server.url

    def private_key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def script(self, token: str, *replies: Scripted) -> None:
        self.replies.setdefault(token, []).extend(replies)

    async def __aenter__(self) -> ApnsService:
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.stop()

    @staticmethod
    def _reason(status: int, reason: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        body: dict = {"reason": reason}
        if status == 410:
            body["timestamp"] = int(time.time() * 1000)
        return status, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode()

    def _check(self, request: Request) -> tuple[int, str, ApnsPush | None]:
        if request.version != "HTTP/2":
            return 400, "BadProtocol (APNs speaks HTTP/2 only)", None
        match = re.fullmatch(r"/3/device/([0-9a-fA-F]+)", request.path)
        if request.method != "POST":
            return 405, "MethodNotAllowed", None
        if not match:
            return 400, "BadDeviceToken", None
        headers = request.headers
        auth = headers.get("authorization", "")
        if not auth.startswith("bearer "):
            return 403, "MissingProviderToken", None
        token = auth.removeprefix("bearer ")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "ES256" or header.get("kid") != KEY_ID:
                return 403, "InvalidProviderToken", None
            claims = jwt.decode(token, self.key.public_key(), algorithms=["ES256"], options={"require": ["iss", "iat"]})
        except jwt.PyJWTError:
            return 403, "InvalidProviderToken", None
        if claims["iss"] != TEAM_ID:
            return 403, "InvalidProviderToken", None
        if claims["iat"] > time.time() + 60:
            return 403, "InvalidProviderToken", None
        if claims["iat"] < time.time() - 3600:
            return 403, "ExpiredProviderToken", None
        if not headers.get("apns-topic"):
            return 400, "MissingTopic", None
        if headers["apns-topic"] != TOPIC:
            return 400, "TopicDisallowed", None
        if headers.get("apns-push-type") != "alert":
            return 400, "InvalidPushType", None
        if headers.get("apns-priority") not in ("5", "10"):
            return 400, "BadPriority", None
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return 400, "BadCollapseId", None
        if not headers.get("apns-expiration", "0").isdigit():
            return 400, "BadExpirationDate", None
        if len(request.body) > 4096:
            return 413, "PayloadTooLarge", None
        try:
            payload = json.loads(request.body)
            alert = payload["aps"]["alert"]
            assert alert["title"] and alert["body"]
        except (ValueError, KeyError, TypeError, AssertionError):
            return 400, "PayloadEmpty", None
        self.provider_tokens.add(token)
        push = ApnsPush(match.group(1), payload, dict(headers), claims, request.version, time.monotonic())
        return 200, "", push

    async def _handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        device = request.path.rsplit("/", 1)[-1]
        self.attempts.append((device, time.monotonic()))
        status, reason, push = self._check(request)
        if push is None:
            self.refusals.append(f"{status} {reason}")
            return self._reason(status, reason)
        if device in self.unregistered:
            return self._reason(410, "Unregistered")
        if self.replies.get(device):
            scripted = self.replies[device].pop(0)
            return self._reason(scripted.status, scripted.reason, scripted.headers)
        self.messages.append(push)
        return 200, {"apns-id": str(uuid.uuid4()).upper()}, b""
