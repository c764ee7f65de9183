"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives: the mail catcher of
`notiflow dev` and the SMTP server of the test suite.

``MailCatcher`` is the server (its own port; can be stopped and started again); its ``sink``
keeps every message it accepts, refuses the addresses in ``rejected`` with 550 and, given a
folder, files each message as ``NNNNN.eml`` with a line in ``index.txt``.

Given ``bounce_to`` (the bounce receiver's host and port, as `notiflow dev` sets it), it also plays a
mail system that cannot deliver: a message for ``bounce@…`` (or ``bounce+anything@…``) or for any
address ``@bounce.example`` is accepted, filed, and answered with a real RFC 3464 DSN (5.1.1, user unknown)
sent from the null sender to the message's envelope sender — its VERP address — through that port.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from programs.dev.ports import free_port

log = logging.getLogger(__name__)

#: Addresses the catcher bounces when it has a bounce receiver to answer to.
BOUNCING = re.compile(r"^(bounce(\+[^@]*)?@[^@]+|[^@]+@bounce\.example)$", re.IGNORECASE)


@dataclass
class CaughtMail:
    envelope_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    #: where it was filed, when the sink has a folder
    path: Path | None = None
    received_at: float = field(default_factory=time.perf_counter)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else ""


@dataclass
class MailSink:
    """An aiosmtpd handler that keeps what it accepts and refuses chosen addresses with 550."""

    folder: Path | None = None
    messages: list[CaughtMail] = field(default_factory=list)
    #: address → the reason given with its 550
    rejected: dict[str, str] = field(default_factory=dict)
    #: (host, port) of the bounce receiver: mail to a BOUNCING address is answered with a DSN sent there
    bounce_to: tuple[str, int] | None = None
    #: the DSNs sent: (envelope sender they went to, the bounced recipient)
    bounced: list[tuple[str, str]] = field(default_factory=list)
    _pending: set[asyncio.Task] = field(default_factory=set)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.rejected:
            return f"550 5.1.1 {self.rejected[address]}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        mail = CaughtMail(envelope.mail_from, list(envelope.rcpt_tos), message)  # type: ignore[arg-type]
        if self.folder is not None:
            mail.path = self.folder / f"{len(self.messages) + 1:05d}.eml"
            mail.path.write_bytes(envelope.content)
            with (self.folder / "index.txt").open("a") as listing:
                listing.write(f"{mail.path.name}\t{', '.join(mail.rcpt_tos)}\t{mail.subject}\n")
        self.messages.append(mail)
        if self.bounce_to is not None and envelope.mail_from:
            for rcpt in mail.rcpt_tos:
                if BOUNCING.match(rcpt):
                    task = asyncio.get_running_loop().create_task(
                        self._bounce(envelope.content, envelope.mail_from, rcpt)
                    )
                    self._pending.add(task)
                    task.add_done_callback(self._pending.discard)
        return "250 Message accepted for delivery"

    async def _bounce(self, original: bytes, envelope_sender: str, recipient: str) -> None:
        """Send the DSN a remote mail system would: from ``<>`` to the envelope sender, via the bounce receiver."""
        import aiosmtplib

        from activities.bounces.compose import delivery_status_notification

        assert self.bounce_to is not None
        dsn = delivery_status_notification(original=original, envelope_sender=envelope_sender, recipient=recipient)
        host, port = self.bounce_to
        try:
            async with aiosmtplib.SMTP(hostname=host, port=port, timeout=10) as client:
                await client.sendmail("", [envelope_sender], dsn)
        except Exception as exc:
            log.warning("the dev mail catcher could not bounce %s to %s: %s", recipient, envelope_sender, exc)
            return
        self.bounced.append((envelope_sender, recipient))
        if self.folder is not None:
            with (self.folder / "index.txt").open("a") as listing:
                listing.write(f"(bounced)\t{recipient}\tDSN 5.1.1 sent to {envelope_sender}\n")

    def to(self, address: str) -> list[CaughtMail]:
        return [m for m in self.messages if address in m.rcpt_tos]


class MailCatcher:
    """A real SMTP server on a TCP port of its own; can be stopped and started again."""

    def __init__(self, port: int | None = None, folder: Path | None = None) -> None:
        self.port = port or free_port()
        self.sink = MailSink(folder)
        self._controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        if self.sink.folder is not None:
            self.sink.folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()
            self._controller = None

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[CaughtMail]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.sink.messages) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {count} mails, SMTP server received {len(self.sink.messages)}")
            await asyncio.sleep(0.05)
        return self.sink.messages
