"""A local SMS gateway on a real TCP port that checks what a real one would.

It speaks the two dialects notiflow sends: the JSON API (``{"to", "from", "text"}`` + Bearer token) and
Twilio's Messages API (form body + basic auth). Each request is checked — an E.164 number, the sender,
the token, the length — and refused with a 400 saying what is wrong, as a real gateway would; otherwise
it answers from a script (``replies``) or with 200/201 and a message id.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class Sms:
    to: str
    sender: str
    text: str
    at: float
    headers: dict[str, str]


@dataclass
class Scripted:
    status: int
    body: dict | str
    headers: dict[str, str] = field(default_factory=dict)


class SmsGateway:
    def __init__(
        self,
        *,
        token: str = "sms-token",
        sender: str = "NOTIFLOW",
        max_length: int = 160,
        twilio: bool = False,
        account: str = "AC0123456789",
    ) -> None:
        self.token, self.sender, self.max_length = token, sender, max_length
        self.twilio, self.account = twilio, account
        self.replies: list[Scripted] = []
        self.attempts: list[float] = []  # every request, accepted or not
        self.messages: list[Sms] = []  # what was accepted
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        path = f"/2010-04-01/Accounts/{self.account}/Messages.json" if self.twilio else "/v1/sms"
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> SmsGateway:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Sms]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} SMS, the gateway accepted {len(self.messages)}")
            await asyncio.sleep(0.02)
        return self.messages

    def _check(self, headers: dict[str, str], body: bytes) -> tuple[Sms | None, str | None]:
        auth = headers.get("authorization", "")
        if self.twilio:
            expected = "Basic " + base64.b64encode(f"{self.account}:{self.token}".encode()).decode()
            if auth != expected:
                return None, "Authenticate (code 20003)"
            if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                return None, "expected a form body"
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
            to, sender, text = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        else:
            if auth != f"Bearer {self.token}":
                return None, "bad token"
            data = json.loads(body)
            if set(data) != {"to", "from", "text"}:
                return None, f"unexpected fields {sorted(data)}"
            to, sender, text = data["to"], data["from"], data["text"]
        if not E164.match(to):
            return None, f"The 'To' number {to} is not a valid phone number (E.164)"
        if sender != self.sender:
            return None, f"unknown sender {sender!r}"
        if not text or len(text) > self.max_length:
            return None, f"text of {len(text)} characters (at most {self.max_length})"
        return Sms(to, sender, text, time.monotonic(), headers), None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.attempts.append(time.monotonic())
                sms, problem = self._check(headers, body)
                extra: dict[str, str] = {}
                if problem:
                    status, answer = 400, {"code": 21211, "message": problem}
                elif self.replies:
                    scripted = self.replies.pop(0)
                    status, answer, extra = scripted.status, scripted.body, scripted.headers
                    if 200 <= status < 300:
                        self.messages.append(sms)
                else:
                    self.messages.append(sms)
                    status = 201 if self.twilio else 200
                    answer = (
                        {"sid": f"SM{len(self.messages):032d}"} if self.twilio else {"id": f"gw-{len(self.messages)}"}
                    )
                payload = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
                head_out = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                writer.write(
                    f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n{head_out}\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
