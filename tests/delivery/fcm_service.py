"""A local FCM HTTP v1 and Google OAuth2 token endpoint on a real TCP port, checking what the real ones do.

The token endpoint takes an RFC 7523 JWT-bearer grant whose RS256 assertion verifies with the service
account's public key, with ``iss`` its ``client_email``, ``aud`` the token URL and the firebase.messaging
``scope``; it gives an access token. ``messages:send`` wants that token as ``Bearer``, JSON with
``message.token`` and ``message.notification``; a token in ``unregistered`` gets FCM's 404 ``UNREGISTERED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PROJECT = "notiflow-test"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@dataclass
class FcmMessage:
    message: dict
    at: float


class FcmService:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.access_tokens: list[str] = []
        self.token_requests = 0
        self.unregistered: set[str] = set()
        self.refusals: list[str] = []
        self.messages: list[FcmMessage] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def service_account(self) -> str:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": f"notiflow@{PROJECT}.iam.gserviceaccount.com",
                "token_uri": f"{self.url}/token",
            }
        )

    async def __aenter__(self) -> FcmService:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def _token(self, body: bytes) -> tuple[int, dict]:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        try:
            claims = jwt.decode(
                form.get("assertion", ""), self.key.public_key(), algorithms=["RS256"], audience=f"{self.url}/token"
            )
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        if claims.get("iss") != f"notiflow@{PROJECT}.iam.gserviceaccount.com" or claims.get("scope") != SCOPE:
            return 400, {"error": "invalid_scope"}
        if claims["exp"] - claims["iat"] > 3600:
            return 400, {"error": "invalid_grant", "error_description": "assertion lives over an hour"}
        token = "ya29." + secrets.token_urlsafe(16)
        self.access_tokens.append(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _send(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        if path != f"/v1/projects/{PROJECT}/messages:send":
            return 404, {"error": {"code": 404, "message": f"no such project path {path}", "status": "NOT_FOUND"}}
        if headers.get("authorization", "").removeprefix("Bearer ") not in self.access_tokens:
            return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad access token"}}
        message = json.loads(body)["message"]
        if not message.get("token") or not message.get("notification", {}).get("title"):
            return 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "token and title required"}}
        if message["token"] in self.unregistered:
            return 404, {
                "error": {
                    "code": 404,
                    "message": "Requested entity was not found.",
                    "status": "NOT_FOUND",
                    "details": [
                        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}
                    ],
                }
            }
        self.messages.append(FcmMessage(message, time.monotonic()))
        return 200, {"name": f"projects/{PROJECT}/messages/{len(self.messages)}"}

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
                status, answer = self._token(body) if path == "/token" else self._send(path, headers, body)
                if status != 200:
                    self.refusals.append(f"{status} {answer}")
                payload = json.dumps(answer).encode()
                writer.write(
                    f"HTTP/1.1 {status} Status\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
