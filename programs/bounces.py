"""`notiflow bounces`: the SMTP receiver of the bounce domain (aiosmtpd).

It accepts mail only for ``NOTIFLOW_BOUNCE_ADDRESS`` and its VERP forms (``bounces+{code}@domain``);
any other recipient is refused (550 5.1.1). Each message accepted is stored in ``bounce_reports`` and
its effects applied in one transaction (``activities/bounces/queries.py : record_report``). A report it
cannot read or match is kept with the reason; a failure while processing is kept the same way; only a
database that cannot be reached makes it answer 451, so the sender tries again later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.bounces.queries import Received, record_report, record_unprocessed
from activities.delivery.recording import database_unavailable
from notiflow.settings import Settings
from notiflow.verp import code_from_address

log = logging.getLogger(__name__)

#: The largest report accepted (a DSN returning a whole message with attachments stays well below).
DATA_SIZE_LIMIT = 10 * 1024 * 1024


class BounceHandler:
    """aiosmtpd handler: RCPT only to the bounce addresses; DATA stored and applied."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        if not settings.bounce_address:
            raise ValueError("NOTIFLOW_BOUNCE_ADDRESS is not set: the bounce receiver has no address to serve")
        self.sessions = sessions
        self.settings = settings
        self.bounce_address: str = settings.bounce_address
        self.received = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        ours, _ = code_from_address(address, self.bounce_address)
        if not ours:
            return f"550 5.1.1 <{address}>: this server only takes reports for {self.bounce_address}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content or b""
        rcpt = next((r for r in envelope.rcpt_tos if code_from_address(r, self.bounce_address)[1]), None)
        rcpt = rcpt or (envelope.rcpt_tos[0] if envelope.rcpt_tos else None)
        code = code_from_address(rcpt, self.bounce_address)[1] if rcpt else None
        received = Received(raw=raw, envelope_from=envelope.mail_from or None, envelope_to=rcpt, code=code)
        try:
            async with self.sessions.begin() as db:
                entry = await record_report(db, received, soft_bounce_limit=self.settings.soft_bounce_limit)
            log.info(
                "bounce report %s: %s %s %s%s",
                entry.id,
                entry.kind,
                entry.bounce_type,
                entry.address or "",
                f" (kept: {entry.unmatched_reason})" if entry.unmatched_reason else "",
            )
        except Exception as exc:
            if database_unavailable(exc):
                log.warning("database unreachable, report deferred: %s", exc)
                return "451 4.3.0 cannot store the report now, try again later"
            log.exception("a bounce report could not be processed; kept with the reason")
            try:
                async with self.sessions.begin() as db:
                    await record_unprocessed(
                        db, received, f"could not be processed: {type(exc).__name__}: {str(exc)[:500]}"
                    )
            except Exception:
                log.exception("the report could not even be kept")
                return "451 4.3.0 cannot store the report now, try again later"
        self.received += 1
        return "250 2.0.0 report received"


class BounceReceiver:
    """The SMTP server, on the running event loop (so it shares the database pool's loop)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: Settings, *, host: str | None = None, port=None
    ):
        self.handler = BounceHandler(sessions, settings)
        self.host = host or settings.bounce_host
        self.port: int = port if port is not None else settings.bounce_port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        from aiosmtpd.smtp import SMTP

        loop = asyncio.get_running_loop()
        domain = self.handler.bounce_address.rpartition("@")[2]
        self._server = await loop.create_server(
            lambda: SMTP(self.handler, hostname=domain, data_size_limit=DATA_SIZE_LIMIT, ident="notiflow bounces"),
            host=self.host,
            port=self.port,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> BounceReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve_bounces(settings: Settings, stop: asyncio.Event) -> None:
    """Run the receiver until ``stop`` is set (the `notiflow bounces` command)."""
    from notiflow.db import make_engine, make_sessionmaker

    engine = make_engine(settings.require_database_url(), pool_size=2)
    try:
        async with BounceReceiver(make_sessionmaker(engine), settings) as receiver:
            print(
                f"notiflow bounces: smtp://{receiver.host}:{receiver.port} for {settings.bounce_address} (VERP)",
                flush=True,
            )
            await stop.wait()
    finally:
        await engine.dispose()
