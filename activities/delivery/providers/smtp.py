"""The EMAIL provider: SMTP through a small pool of reused aiosmtplib connections.

Messages carry a deterministic Message-ID (from the queue row) and thread
headers per issue, so a resend after a crash is recognisable as the same mail.
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass
from email.header import Header
from email.utils import format_datetime, formataddr

import aiosmtplib

from activities.delivery.providers.base import (
    OutgoingMessage,
    PermanentDeliveryError,
    Receipt,
    TransientDeliveryError,
)
from notiflow.contracts import Channel
from notiflow.settings import Settings
from notiflow.verp import envelope_sender


def mail_domain(settings: Settings) -> str:
    return settings.email_from.rsplit("@", 1)[-1] or "notiflow.local"


def message_id(mail: OutgoingMessage, settings: Settings) -> str:
    return f"<{mail.queue_id}@{mail_domain(settings)}>"


#: Anything that could end a header line or start a new one.
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def _one_line(value: str) -> str:
    """Control characters become a space: no value, whatever its source, can add a header line."""
    return _LINE_BREAKS.sub(" ", value)


def _header(value: str) -> str:
    """RFC 2047 encoding for non-ASCII header text, folded with CRLF; always a single logical line."""
    value = _one_line(value)
    return value if value.isascii() else Header(value, "utf-8").encode().replace("\n", "\r\n")


def _token(value: str) -> str:
    """An id inside a header or a Message-ID: only characters that cannot break out of ``<…>``."""
    return re.sub(r"[^A-Za-z0-9._:\-]", "_", value)


def _part(content_type: str, body: str) -> bytes:
    encoded = base64.encodebytes(body.encode()).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    ).encode() + encoded


def compose(mail: OutgoingMessage, settings: Settings, *, sent_at) -> bytes:
    """The RFC 5322 bytes of a multipart/alternative (text + HTML) message.

    Written directly rather than through email.mime's generator, which costs
    several times more CPU per message: at a fan-out of a thousand recipients
    that is the worker's largest cost. Parts are base64; the boundary is derived
    from the queue row, so the same row always gives the same message.
    """
    domain = mail_domain(settings)
    headers = [
        f"From: {settings.email_from}",
        f"To: {formataddr((_one_line(mail.recipient_name or ''), _one_line(mail.address)), charset='utf-8')}",
        f"Subject: {_header(mail.subject)}",
        f"Date: {format_datetime(sent_at)}",
        f"Message-ID: {message_id(mail, settings)}",
        "MIME-Version: 1.0",
    ]
    if mail.issue_id:
        issue = _token(mail.issue_id)
        thread_root = f"<issue-{issue}@{domain}>"
        headers += [f"In-Reply-To: {thread_root}", f"References: {thread_root}", f"X-Notiflow-Issue: {issue}"]
    if mail.unsubscribe_url:
        headers += [
            f"List-Unsubscribe: <{_one_line(mail.unsubscribe_url)}>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        ]
    if not mail.html:
        return "\r\n".join(headers).encode() + b"\r\n" + _part("text/plain", mail.text)
    boundary = f"=_notiflow_{mail.queue_id}".encode()
    headers.append(f'Content-Type: multipart/alternative; boundary="{boundary.decode()}"')
    return b"".join(
        [
            "\r\n".join(headers).encode(),
            b"\r\n\r\n",
            b"--",
            boundary,
            b"\r\n",
            _part("text/plain", mail.text),
            b"--",
            boundary,
            b"\r\n",
            _part("text/html", mail.html),
            b"--",
            boundary,
            b"--\r\n",
        ]
    )


@dataclass(frozen=True)
class Relay:
    """One mail server notiflow may hand mail to; ``name`` is what a row's ``provider`` says."""

    role: str  # "primary" or "fallback"
    host: str | None
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False

    @property
    def name(self) -> str:
        return f"smtp:{self.role} {self.host}:{self.port}"


class RelayUnreachable(Exception):
    """The relay refused the connection or did not answer in time: another relay may take over."""


class SmtpPool:
    """Up to ``size`` open SMTP connections to one relay, shared by every delivery in the worker."""

    def __init__(self, settings: Settings, relay: Relay | None = None):
        self.settings = settings
        self.relay = relay or Relay(
            "primary",
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_username,
            settings.smtp_password,
            settings.smtp_starttls,
        )
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(settings.smtp_pool_size)

    async def _open(self) -> aiosmtplib.SMTP:
        relay = self.relay
        if not relay.host:
            raise PermanentDeliveryError("SMTP_HOST is not set: email cannot be delivered")
        smtp = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            timeout=self.settings.smtp_timeout_seconds,
            start_tls=relay.starttls,
            use_tls=False,
        )
        try:
            await smtp.connect()
        except (
            TimeoutError,
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPConnectTimeoutError,
            aiosmtplib.SMTPTimeoutError,
            aiosmtplib.SMTPServerDisconnected,
            OSError,
        ) as exc:
            smtp.close()
            raise RelayUnreachable(f"{relay.host}:{relay.port}: {exc or type(exc).__name__}") from None
        if relay.username:
            await smtp.login(relay.username, relay.password or "")
        return smtp

    async def send(self, payload: bytes, recipient: str, sender: str | None = None) -> str:
        """Send over a pooled connection; one the server has dropped is replaced once.

        ``sender`` is the envelope sender (MAIL FROM): the row's VERP address, or EMAIL_FROM.
        """
        sender = sender or self.settings.email_from
        recipients = [recipient]
        async with self._slots:
            smtp = None if self._idle.empty() else self._idle.get_nowait()
            try:
                if smtp is None or not smtp.is_connected:
                    smtp = await self._open()
                try:
                    _, response = await smtp.sendmail(sender, recipients, payload)
                except aiosmtplib.SMTPServerDisconnected:
                    smtp = await self._open()
                    _, response = await smtp.sendmail(sender, recipients, payload)
            except BaseException:
                await _quietly_close(smtp)
                raise
            self._idle.put_nowait(smtp)
            return response

    async def close(self) -> None:
        while not self._idle.empty():
            await _quietly_close(self._idle.get_nowait())


async def _quietly_close(smtp: aiosmtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        await smtp.quit()
    except Exception:
        smtp.close()


class SmtpProvider:
    """Mail through the primary relay, or through ``SMTP_FALLBACK_HOST`` while the primary cannot be reached.

    Only a refused or timed-out connection moves a message to the fallback relay (an answer from the
    primary, even a refusal, is the primary's answer). After such a failure the fallback is tried first
    for ``PRIMARY_RETRY_AFTER`` seconds, so an outage does not cost every message a connect timeout.
    """

    channel = Channel.EMAIL
    #: how long the primary is skipped after it could not be reached
    PRIMARY_RETRY_AFTER = 30.0

    def __init__(self, settings: Settings):
        self.settings = settings
        self.pool = SmtpPool(settings)
        self.fallback: SmtpPool | None = None
        if settings.smtp_fallback_host:
            self.fallback = SmtpPool(
                settings,
                Relay(
                    "fallback",
                    settings.smtp_fallback_host,
                    settings.smtp_fallback_port,
                    settings.smtp_fallback_username,
                    settings.smtp_fallback_password,
                    settings.smtp_fallback_starttls,
                ),
            )
        self.concurrency = settings.smtp_pool_size
        self._primary_down_until = 0.0

    def _relays(self) -> list[SmtpPool]:
        if self.fallback is None:
            return [self.pool]
        if asyncio.get_running_loop().time() < self._primary_down_until:
            return [self.fallback, self.pool]
        return [self.pool, self.fallback]

    async def _send_through_a_relay(self, payload: bytes, address: str, sender: str) -> tuple[str, Relay]:
        unreachable: list[str] = []
        for pool in self._relays():
            try:
                return await pool.send(payload, address, sender), pool.relay
            except RelayUnreachable as exc:
                unreachable.append(f"{pool.relay.role} {exc}")
                if pool is self.pool:
                    self._primary_down_until = asyncio.get_running_loop().time() + self.PRIMARY_RETRY_AFTER
        raise TransientDeliveryError(f"SMTP server unreachable: {'; '.join(unreachable)}")

    async def send(self, mail: OutgoingMessage, *, sent_at) -> Receipt:
        payload = compose(mail, self.settings, sent_at=sent_at)
        try:
            sender = envelope_sender(mail.queue_id, self.settings.bounce_address, self.settings.email_from)
            response, relay = await self._send_through_a_relay(payload, mail.address, sender)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            if all(500 <= code < 600 for code in codes):
                raise PermanentDeliveryError(f"recipient refused: {detail}") from None
            raise TransientDeliveryError(f"recipient deferred: {detail}") from None
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentDeliveryError(f"SMTP {exc.code} {exc.message}") from None
            raise TransientDeliveryError(f"SMTP {exc.code} {exc.message}") from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError(
                f"SMTP server {self.settings.smtp_host}:{self.settings.smtp_port} unreachable: {exc or type(exc).__name__}"
            ) from None
        return Receipt(provider_message_id=message_id(mail, self.settings), response=response, provider=relay.name)

    async def close(self) -> None:
        await self.pool.close()
        if self.fallback is not None:
            await self.fallback.close()
