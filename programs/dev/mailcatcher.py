"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives: the mail catcher of
`notiflow dev` and the SMTP server of the test suite.

``MailCatcher`` is the server (its own port; can be stopped and started again); its ``sink``
keeps every message it accepts, refuses the addresses in ``rejected`` with 550 and, given a
folder, files each message as ``NNNNN.eml`` with a line in ``index.txt``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from programs.dev.ports import free_port


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
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[CaughtMail]:
        return [m for m in self.messages if address in m.rcpt_tos]


class MailCatcher:
    """A real SMTP server on a TCP port of its own; can be stopped and started again."""

    def __init__(self, port: int | None = None, folder: Path | None = None) -> None:
        self.port = port or free_port()
        self.sink = MailSink(folder)
        self._controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller  # the dev extra

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
