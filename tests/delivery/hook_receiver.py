"""Local HTTP receivers for webhooks, Slack, Teams: real TCP listeners that check what a real receiver would.

``Receiver`` is a small HTTP/1.1 server on 127.0.0.1 (keep-alive, Content-Length
bodies) in the test's event loop. It counts every connection — so a test can prove
that a refused URL was never even connected to — records each request, and answers
from a script (``replies``) or a ``check`` function that validates the request and
returns a reply (e.g. a 400 for a bad signature, as a real receiver would).

``verify_standard_webhook`` checks a Standard Webhooks signature with hmac/hashlib
only — independent of the ``standardwebhooks`` library the code under test uses —
and refuses stale timestamps and replays.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float  # time.monotonic()

    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)


REASONS = {
    200: "OK",
    202: "Accepted",
    204: "No Content",
    302: "Found",
    400: "Bad Request",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Receiver:
    def __init__(
        self,
        *,
        replies: list[Reply] | None = None,
        check: Callable[[Received], Reply | None] | None = None,
        default: Reply | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.replies = list(replies or [])
        self.check = check
        self.default = default or Reply()
        self.ssl_context = ssl_context
        self.connections = 0
        self.requests: list[Received] = []
        self.answers: list[int] = []
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
            await asyncio.sleep(0.02)
        return self.requests

    def _reply_for(self, request: Received) -> Reply:
        if self.check is not None:
            refused = self.check(request)
            if refused is not None:
                return refused
        return self.replies.pop(0) if self.replies else self.default

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(method, path, headers, body, time.monotonic())
                self.requests.append(request)
                reply = self._reply_for(request)
                self.answers.append(reply.status)
                extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
                writer.write(
                    f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}\r\n"
                    f"Content-Length: {len(reply.body)}\r\n{extra}\r\n".encode()
                    + reply.body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


# ------------------------------------------------------------------------------ Standard Webhooks, independently

TOLERANCE_SECONDS = 5 * 60


class WebhookVerifier:
    """A receiver's checks: a valid v1 signature for one of ``secrets``, a fresh timestamp, never the same message twice."""

    def __init__(self, *secrets: str) -> None:
        self.secrets = list(secrets)
        self.seen: set[tuple[str, str]] = set()
        self.refusals: list[str] = []

    def problem(self, request: Received, now: float | None = None) -> str | None:
        msg_id = request.headers.get("webhook-id")
        stamp = request.headers.get("webhook-timestamp")
        signatures = request.headers.get("webhook-signature", "")
        if not msg_id or not stamp or not signatures:
            return "missing webhook-id, webhook-timestamp or webhook-signature"
        if not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > TOLERANCE_SECONDS:
            return "stale timestamp"
        if not any(valid_signature(secret, msg_id, stamp, request.body, signatures) for secret in self.secrets):
            return "bad signature"
        if (msg_id, stamp) in self.seen:
            return "replayed"
        self.seen.add((msg_id, stamp))
        return None

    def check(self, request: Received) -> Reply | None:
        problem = self.problem(request)
        if problem:
            self.refusals.append(problem)
            return Reply(400, problem.encode())
        return None


def expected_signature(secret: str, msg_id: str, stamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, msg_id.encode() + b"." + stamp.encode() + b"." + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def valid_signature(secret: str, msg_id: str, stamp: str, body: bytes, header: str) -> bool:
    wanted = expected_signature(secret, msg_id, stamp, body)
    return any(
        version == "v1" and hmac.compare_digest(value, wanted)
        for version, _, value in (part.partition(",") for part in header.split())
    )
