"""Small HTTP servers on 127.0.0.1 that keep what they receive: the SMS gateway and the webhook, Slack and
Teams receiver of `notiflow dev` and `notiflow demo`, filed like the caught mail.

``HttpCatcher`` answers every POST (its own port, its own thread), keeps it in ``requests`` and, given a
folder, files it as ``NNNNN.json`` (path, headers, body) with a line in ``index.txt``. ``sms_catcher``
answers as an SMS gateway does — ``{"id": "sms-00001"}``, or 401 without the expected bearer token —
and ``hook_catcher`` as webhook receivers do: 200 (Slack's ``ok``), 202 with an empty body on ``/teams``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from programs.dev.ports import free_port

#: What a catcher answers: status, headers, body.
Answer = tuple[int, dict[str, str], bytes]
#: Redacted before filing: the dev gateway token is not worth leaving in files.
_REDACTED = {"authorization"}


@dataclass
class CaughtRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    #: where it was filed, when the catcher has a folder
    file: Path | None = None
    #: answered 2xx (kept and filed)
    accepted: bool = False
    received_at: float = field(default_factory=time.perf_counter)

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class HttpCatcher:
    """An HTTP server on 127.0.0.1 keeping every POST; ``answer`` decides the reply, ``describe`` its index line."""

    def __init__(
        self,
        name: str,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        folder: Path | None = None,
        answer: Callable[[CaughtRequest, int], Answer] | None = None,
        describe: Callable[[CaughtRequest], str] | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port or free_port()
        self.folder = folder
        self.requests: list[CaughtRequest] = []
        self._answer = answer or (lambda request, number: (200, {"Content-Type": "text/plain"}, b"ok"))
        self._describe = describe or (lambda request: request.path)
        self._lock = threading.Lock()
        self._filed_before = 0
        self._accepted = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._filed_before = len(list(self.folder.glob("*.json")))  # a restarted `notiflow dev` files after them
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                request = CaughtRequest(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                )
                status, headers, body = catcher._keep(request)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the index is the log
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"{self.name}-catcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _keep(self, request: CaughtRequest) -> Answer:
        with self._lock:
            number = self._filed_before + self._accepted + 1
            answer = self._answer(request, number)
            request.accepted = 200 <= answer[0] < 300
            self._accepted += request.accepted
            if self.folder is not None and request.accepted:
                request.file = self.folder / f"{number:05d}.json"
                headers = {k: ("[redacted]" if k in _REDACTED else v) for k, v in request.headers.items()}
                filed = {
                    "path": request.path,
                    "status": answer[0],
                    "headers": headers,
                    "body": request.json() if request.json() is not None else request.body.decode(errors="replace"),
                }
                request.file.write_text(json.dumps(filed, indent=2, ensure_ascii=False))
                with (self.folder / "index.txt").open("a") as listing:
                    listing.write(f"{request.file.name}\t{self._describe(request)}\n")
            self.requests.append(request)
            return answer

    def describe(self, request: CaughtRequest) -> str:
        """Its line in index.txt (after the file name): tab-separated."""
        return self._describe(request)

    def caught(self) -> list[CaughtRequest]:
        """What was accepted (a 2xx answer), in order."""
        return [r for r in self.requests if r.accepted]

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[CaughtRequest]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.requests) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"expected {count} requests, the {self.name} catcher received {len(self.requests)}"
                )
            await asyncio.sleep(0.05)
        return self.requests


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def sms_catcher(folder: Path | None, token: str, port: int | None = None, host: str = "127.0.0.1") -> HttpCatcher:
    """An SMS gateway speaking NOTIFLOW_SMS_FORMAT=json: Bearer ``token`` required, ``{"id": …}`` answered."""

    def answer(request: CaughtRequest, number: int) -> Answer:
        if request.headers.get("authorization") != f"Bearer {token}":
            return 401, {"Content-Type": "application/json"}, b'{"error": "bad or missing bearer token"}'
        body = request.json()
        if not isinstance(body, dict) or not body.get("to") or not body.get("text"):
            return 400, {"Content-Type": "application/json"}, b'{"error": "expected {to, from, text}"}'
        return 200, {"Content-Type": "application/json"}, json.dumps({"id": f"sms-{number:05d}"}).encode()

    def describe(request: CaughtRequest) -> str:
        body = request.json() or {}
        return f"{body.get('to', '')}\t{_one_line(body.get('text', ''))}"

    return HttpCatcher("SMS", port=port, host=host, folder=folder, answer=answer, describe=describe)


def hook_catcher(folder: Path | None, port: int | None = None, host: str = "127.0.0.1") -> HttpCatcher:
    """One receiver for the demo's subscriptions: ``/webhook`` (signed JSON), ``/slack``, ``/teams``."""

    def answer(request: CaughtRequest, number: int) -> Answer:
        if request.path.startswith("/teams"):
            return 202, {}, b""  # what Teams answers
        return 200, {"Content-Type": "text/plain"}, b"ok"

    def describe(request: CaughtRequest) -> str:
        body = request.json()
        if request.path.startswith("/webhook") and isinstance(body, dict):
            issue = body.get("issue") or {}
            what = f"{body.get('type', '')} {issue.get('id', '')}\twebhook-id {request.headers.get('webhook-id', '')}"
        elif request.path.startswith("/slack") and isinstance(body, dict):
            what = _one_line(body.get("text", ""))
        elif isinstance(body, dict) and body.get("attachments"):
            what = "Adaptive Card " + str(body["attachments"][0].get("content", {}).get("version", ""))
        else:
            what = f"{len(request.body)} bytes"
        return f"{request.path}\t{what}"

    return HttpCatcher("webhook", port=port, host=host, folder=folder, answer=answer, describe=describe)
