"""A small asyncio HTTP server speaking HTTP/1.1 and HTTP/2 (``h2``, prior knowledge) on the same port.

APNs speaks only HTTP/2, Web Push services and FCM take HTTP/1.1: the dev push receiver and the tests' local
APNs answer both on one port. A connection opening with the HTTP/2 preface is served with ``h2`` (what
``httpx`` with ``http1=False`` sends to an ``http://`` URL); any other with a minimal HTTP/1.1 parser.
``handler(request)`` gives ``(status, headers, body)``; ``Request.version`` says which protocol brought it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
REASONS = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
REASONS |= {404: "Not Found", 405: "Method Not Allowed", 410: "Gone", 413: "Payload Too Large"}
REASONS |= {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
MAX_BODY = 1 << 20


@dataclass
class Request:
    method: str
    path: str
    #: lowercase names
    headers: dict[str, str]
    body: bytes
    #: "HTTP/2" or "HTTP/1.1"
    version: str
    extra: dict = field(default_factory=dict)


Answer = tuple[int, dict[str, str], bytes]
Handler = Callable[[Request], Awaitable[Answer]]


class DualServer:
    """HTTP/1.1 + HTTP/2 on ``host:port`` (0: a free one); ``async with`` or ``start_in_thread()``."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> DualServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self, name: str) -> None:
        """Serve from a thread of its own (its own event loop), as the dev stack's other catchers do."""
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            started.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()
        started.wait(10)

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.read(len(PREFACE))
            while first and len(first) < len(PREFACE) and PREFACE.startswith(first):
                more = await reader.read(len(PREFACE) - len(first))
                if not more:
                    break
                first += more
            if first == PREFACE:
                await self._serve_h2(first, reader, writer)
            elif first:
                await self._serve_h1(first, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            writer.close()

    async def _serve_h2(self, data: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        while data:
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = ({str(k): str(v) for k, v in event.headers}, bytearray())
                elif isinstance(event, h2.events.DataReceived):
                    if event.stream_id in streams and len(streams[event.stream_id][1]) < MAX_BODY:
                        streams[event.stream_id][1].extend(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id in streams:
                    headers, body = streams.pop(event.stream_id)
                    request = Request(
                        headers.get(":method", ""),
                        headers.get(":path", ""),
                        {k.lower(): v for k, v in headers.items() if not k.startswith(":")},
                        bytes(body),
                        "HTTP/2",
                    )
                    status, out, payload = await self.handler(request)
                    answer = [(":status", str(status)), ("content-length", str(len(payload)))]
                    answer += [(k.lower(), v) for k, v in out.items()]
                    conn.send_headers(event.stream_id, answer, end_stream=not payload)
                    if payload:
                        conn.send_data(event.stream_id, payload, end_stream=True)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    writer.write(conn.data_to_send())
                    await writer.drain()
                    return
            writer.write(conn.data_to_send())
            await writer.drain()
            data = await reader.read(65535)

    async def _serve_h1(self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffered = first
        while True:
            while b"\r\n\r\n" not in buffered:
                more = await reader.read(65535)
                if not more:
                    return
                buffered += more
            head, buffered = buffered.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            length = min(int(headers.get("content-length") or 0), MAX_BODY)
            while len(buffered) < length:
                more = await reader.read(65535)
                if not more:
                    return
                buffered += more
            body, buffered = buffered[:length], buffered[length:]
            status, out, payload = await self.handler(Request(method, path, headers, body, "HTTP/1.1"))
            head_out = "".join(f"{k}: {v}\r\n" for k, v in out.items())
            writer.write(
                f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
                f"Content-Length: {len(payload)}\r\n{head_out}\r\n".encode()
                + payload
            )
            await writer.drain()
