"""The dev stack's local push receiver: Web Push, FCM and APNs on one port (HTTP/1.1 and HTTP/2), filed like the
caught SMS as ``NNNNN.json`` with a line in ``index.txt``.

- Web Push ``POST /wpush/<id>``: the VAPID JWT (``Authorization: vapid t=…, k=…``) must verify with the stack's
  VAPID public key, with ``aud`` this origin, ``exp`` at most 24 h away and a ``mailto:``/``https:`` ``sub``
  (401/403 otherwise, as a push service does). The ``aes128gcm`` body is decrypted when the receiver holds
  the subscription's keys — the demo subscription it made (``demo_subscription``) — and filed encrypted
  (base64) otherwise; 201.
- FCM: ``POST /token`` gives an access token for a JWT-bearer grant whose RS256 assertion verifies with the
  dev service account's key; ``POST /v1/projects/<id>/messages:send`` wants it as ``Bearer``; 200 ``{name}``.
- APNs: ``POST /3/device/<hex token>`` over HTTP/2 only, with an ES256 provider token (``kid``, ``iss``,
  ``iat`` under an hour) that verifies with the dev auth key, and the ``apns-topic``; 200 with ``apns-id``.

The keys it checks with (and the ones the dev stack configures notiflow with, where the environment sets none)
are kept in ``push-keys.json`` beside the folder, so browsers subscribed on an earlier run keep working.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from notiflow.vapid import b64url, b64url_decode, new_pair
from programs.dev.h2server import Answer, DualServer, Request

DEV_FCM_PROJECT = "notiflow-dev"
DEV_FCM_EMAIL = f"notiflow@{DEV_FCM_PROJECT}.iam.gserviceaccount.com"
DEV_APNS_TEAM = "DEVTEAM000"
DEV_APNS_KEY_ID = "DEVKEY0000"
DEV_APNS_TOPIC = "dev.notiflow.tracker"
_VAPID = re.compile(r"^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_\-]+)$")
_REDACTED = {"authorization"}


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class DevPushKeys:
    """The dev stack's push keys, made once and kept in a file."""

    vapid_private_key: str
    vapid_public_key: str
    #: the demo Web Push subscription's browser side: its P-256 key (PEM) and auth secret (base64url)
    browser_key: str
    browser_auth: str
    fcm_key: str
    apns_key: str

    @classmethod
    def load_or_make(cls, path: Path) -> DevPushKeys:
        if path.exists():
            try:
                return cls(**json.loads(path.read_text()))
            except (ValueError, TypeError):
                pass
        private, public = new_pair()
        keys = cls(
            vapid_private_key=private,
            vapid_public_key=public,
            browser_key=_pem(ec.generate_private_key(ec.SECP256R1())),
            browser_auth=b64url(os.urandom(16)),
            fcm_key=_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            apns_key=_pem(ec.generate_private_key(ec.SECP256R1())),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(keys.__dict__, indent=2))
        path.chmod(0o600)
        return keys

    def browser(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.browser_key.encode(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def fcm_service_account(self, token_uri: str) -> str:
        return json.dumps(
            {
                "type": "service_account",
                "project_id": DEV_FCM_PROJECT,
                "private_key_id": "dev",
                "private_key": self.fcm_key,
                "client_email": DEV_FCM_EMAIL,
                "token_uri": token_uri,
            }
        )


@dataclass
class CaughtPush:
    kind: str
    path: str
    headers: dict[str, str]
    #: what was delivered: the decrypted payload, FCM's message, APNs' body, or {"encrypted": base64}
    payload: Any
    #: the verified claims (VAPID JWT, provider token)
    claims: dict
    file: Path | None = None


class PushCatcher:
    """One port for the three push services; ``vapid_public_key`` is the key notiflow signs Web Push with."""

    def __init__(
        self,
        folder: Path | None,
        keys: DevPushKeys,
        *,
        vapid_public_key: str | None = None,
        apns_topic: str = DEV_APNS_TOPIC,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.folder = folder
        self.keys = keys
        self.vapid_public_key = vapid_public_key or keys.vapid_public_key
        self.apns_topic = apns_topic
        self.requests: list[CaughtPush] = []
        self.refusals: list[str] = []
        self.access_tokens: set[str] = set()
        self._browsers: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
        self._lock = threading.Lock()
        self._filed_before = 0
        self._server = DualServer(self._handle, host, port)
        fcm_key = serialization.load_pem_private_key(keys.fcm_key.encode(), None)
        apns_key = serialization.load_pem_private_key(keys.apns_key.encode(), None)
        assert isinstance(fcm_key, rsa.RSAPrivateKey) and isinstance(apns_key, ec.EllipticCurvePrivateKey)
        self._fcm_public = fcm_key.public_key()
        self._apns_public = apns_key.public_key()

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> None:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._filed_before = len(list(self.folder.glob("*.json")))
        self._server.start_in_thread("push-catcher")

    def stop(self) -> None:
        self._server.stop_thread()

    async def astart(self) -> None:
        """Start on the running event loop (tests)."""
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        await self._server.start()

    async def astop(self) -> None:
        await self._server.stop()

    def demo_subscription(self, name: str) -> dict:
        """A Web Push subscription (``PushSubscription.toJSON()``) whose keys this receiver holds."""
        key, auth = self.keys.browser(), b64url_decode(self.keys.browser_auth)
        self._browsers[f"/wpush/{name}"] = (key, auth)
        point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": f"{self.url}/wpush/{name}", "keys": {"p256dh": b64url(point), "auth": b64url(auth)}}

    # ------------------------------------------------------------------------------------------ answers

    async def _handle(self, request: Request) -> Answer:
        path = request.path.split("?", 1)[0]
        if request.method != "POST":
            return 405, {"content-type": "text/plain"}, b"POST only"
        if path.startswith("/wpush/"):
            return self._web_push(path, request)
        if path == "/token":
            return self._fcm_token(request)
        if path.startswith("/v1/projects/") and path.endswith("/messages:send"):
            return self._fcm_send(path, request)
        if path.startswith("/3/device/"):
            return self._apns(path, request)
        return 404, {"content-type": "text/plain"}, b"not a push service path"

    def _refuse(self, status: int, text: str, content_type: str = "text/plain") -> Answer:
        self.refusals.append(f"{status} {text}")
        return status, {"content-type": content_type}, text.encode()

    def _web_push(self, path: str, request: Request) -> Answer:
        match = _VAPID.match(request.headers.get("authorization", ""))
        if not match:
            return self._refuse(401, "expected Authorization: vapid t=…, k=…")
        token, key = match.groups()
        if key != self.vapid_public_key:
            return self._refuse(403, "k is not the VAPID key of this stack (applicationServerKey)")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
        try:
            claims = jwt.decode(
                token, public, algorithms=["ES256"], audience=self.url, options={"require": ["aud", "exp", "sub"]}
            )
        except jwt.PyJWTError as exc:
            return self._refuse(403, f"VAPID JWT refused: {exc}")
        if claims["exp"] > time.time() + 24 * 3600:
            return self._refuse(403, "VAPID JWT exp more than 24 h away")
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return self._refuse(403, "VAPID sub must be a mailto: or https: URL")
        if request.headers.get("content-encoding") != "aes128gcm" or not request.headers.get("ttl", "").isdigit():
            return self._refuse(400, "expected Content-Encoding: aes128gcm and a TTL")
        held = self._browsers.get(path)
        payload: Any
        if held is None:
            payload = {"encrypted": base64.b64encode(request.body).decode(), "note": "no keys for this subscription"}
        else:
            try:
                plain = http_ece.decrypt(request.body, private_key=held[0], auth_secret=held[1], version="aes128gcm")
                payload = json.loads(plain)
            except Exception as exc:  # what a browser does: drop what it cannot decrypt
                return self._refuse(400, f"cannot decrypt: {exc!r}")
        self._file(CaughtPush("WEB", path, request.headers, payload, claims))
        return 201, {"location": f"{self.url}/m/{uuid.uuid4().hex}"}, b""

    def _fcm_token(self, request: Request) -> Answer:
        form = {k: v[0] for k, v in parse_qs(request.body.decode(errors="replace")).items()}
        try:
            claims = jwt.decode(
                form.get("assertion", ""), self._fcm_public, algorithms=["RS256"], audience=f"{self.url}/token"
            )
        except jwt.PyJWTError as exc:
            return self._refuse(
                400, json.dumps({"error": "invalid_grant", "error_description": str(exc)}), "application/json"
            )
        if claims.get("iss") != DEV_FCM_EMAIL:
            return self._refuse(
                400, json.dumps({"error": "invalid_grant", "error_description": "unknown iss"}), "application/json"
            )
        token = "ya29.dev-" + uuid.uuid4().hex
        self.access_tokens.add(token)
        body = {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
        return 200, {"content-type": "application/json"}, json.dumps(body).encode()

    def _fcm_send(self, path: str, request: Request) -> Answer:
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in self.access_tokens:
            error = {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad access token"}}
            return self._refuse(401, json.dumps(error), "application/json")
        try:
            message = json.loads(request.body)["message"]
            assert message["token"] and message["notification"]["title"]
        except (ValueError, KeyError, TypeError, AssertionError):
            error = {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "token and title required"}}
            return self._refuse(400, json.dumps(error), "application/json")
        self._file(CaughtPush("FCM", path, request.headers, message, {}))
        name = f"projects/{path.split('/')[3]}/messages/{uuid.uuid4().hex[:16]}"
        return 200, {"content-type": "application/json"}, json.dumps({"name": name}).encode()

    def _apns(self, path: str, request: Request) -> Answer:
        def reason(status: int, why: str) -> Answer:
            return self._refuse(status, json.dumps({"reason": why}), "application/json")

        if request.version != "HTTP/2":
            return reason(400, "BadProtocol: APNs speaks HTTP/2 only")
        if not re.fullmatch(r"/3/device/[0-9a-fA-F]+", path):
            return reason(400, "BadDeviceToken")
        token = request.headers.get("authorization", "").removeprefix("bearer ")
        try:
            if jwt.get_unverified_header(token).get("kid") != DEV_APNS_KEY_ID:
                return reason(403, "InvalidProviderToken")
            claims = jwt.decode(token, self._apns_public, algorithms=["ES256"], options={"require": ["iss", "iat"]})
        except jwt.PyJWTError:
            return reason(403, "InvalidProviderToken")
        if claims["iss"] != DEV_APNS_TEAM:
            return reason(403, "InvalidProviderToken")
        if claims["iat"] < time.time() - 3600:
            return reason(403, "ExpiredProviderToken")
        if request.headers.get("apns-topic") != self.apns_topic:
            return reason(400, "TopicDisallowed")
        if request.headers.get("apns-push-type") != "alert":
            return reason(400, "InvalidPushType")
        if request.headers.get("apns-priority") not in ("5", "10"):
            return reason(400, "BadPriority")
        try:
            body = json.loads(request.body)
            assert body["aps"]["alert"]["title"]
        except (ValueError, KeyError, TypeError, AssertionError):
            return reason(400, "PayloadEmpty")
        self._file(CaughtPush("APNS", path, request.headers, body, claims))
        return 200, {"apns-id": str(uuid.uuid4()).upper()}, b""

    # ------------------------------------------------------------------------------------------ filing

    @staticmethod
    def describe(caught: CaughtPush) -> str:
        """Its line in index.txt (after the file name): kind, device, title — body."""
        payload = caught.payload if isinstance(caught.payload, dict) else {}
        if caught.kind == "FCM":
            shown, device = payload.get("notification", {}), payload.get("token", "")
        elif caught.kind == "APNS":
            shown, device = payload.get("aps", {}).get("alert", {}), caught.path.rsplit("/", 1)[-1]
        else:
            shown, device = payload, caught.path.rsplit("/", 1)[-1]
        if "encrypted" in payload:
            what = f"(encrypted, {len(base64.b64decode(payload['encrypted']))} bytes: no keys for it)"
        else:
            what = " ".join(f"{shown.get('title', '')} — {shown.get('body', '')}".split())
        return f"{caught.kind}\t{device}\t{what}"

    def _file(self, caught: CaughtPush) -> None:
        with self._lock:
            self.requests.append(caught)
            if self.folder is None:
                return
            number = self._filed_before + len(self.requests)
            caught.file = self.folder / f"{number:05d}.json"
            filed = {
                "kind": caught.kind,
                "path": caught.path,
                "headers": {k: ("[redacted]" if k in _REDACTED else v) for k, v in caught.headers.items()},
                "verified": caught.claims,
                "payload": caught.payload,
            }
            caught.file.write_text(json.dumps(filed, indent=2, ensure_ascii=False))
            with (self.folder / "index.txt").open("a") as listing:
                listing.write(f"{caught.file.name}\t{self.describe(caught)}\n")
