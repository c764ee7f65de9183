"""Writing the reports a mail system sends back: an RFC 3464 DSN and an RFC 5965 abuse report.

What the dev mail catcher sends for an address that bounces (``programs/dev/mailcatcher.py``), shaped as
Postfix writes them: a human-readable part, the ``message/delivery-status`` fields, then the returned
headers (``text/rfc822-headers``) of the original mail.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from email import message_from_bytes
from email.policy import compat32
from email.utils import format_datetime


def _returned_headers(original: bytes) -> str:
    head = original.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return head.decode("utf-8", "replace").replace("\r\n", "\n").replace("\n", "\r\n")


def delivery_status_notification(
    *,
    original: bytes,
    envelope_sender: str,
    recipient: str,
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 <{recipient}>: Recipient address rejected: User unknown",
    reporting_mta: str = "mail.bounce.example",
    action: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """The DSN an MTA sends to ``envelope_sender`` when ``original`` could not reach ``recipient``."""
    now = now or datetime.now(timezone.utc)
    action = action or ("failed" if status.startswith("5") else "delayed")
    boundary = f"dsn-{uuid.uuid4().hex}"
    diagnostic = diagnostic.format(recipient=recipient)
    original_id = message_from_bytes(original, policy=compat32).get("Message-ID", "")
    human = (
        f"This is the mail system at host {reporting_mta}.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n\r\n"
        f"<{recipient}>: host {reporting_mta} said: {diagnostic}\r\n"
    )
    lines = [
        f"From: MAILER-DAEMON@{reporting_mta} (Mail Delivery System)",
        f"To: {envelope_sender}",
        "Subject: Undelivered Mail Returned to Sender" if action == "failed" else "Subject: Delayed Mail",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <{uuid.uuid4().hex}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        human,
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {reporting_mta}",
        f"X-Postfix-Queue-ID: {uuid.uuid4().hex[:10].upper()}",
        f"X-Original-Message-ID: {original_id}",
        f"Arrival-Date: {format_datetime(now)}",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        f"Original-Recipient: rfc822;{recipient}",
        f"Action: {action}",
        f"Status: {status}",
        f"Remote-MTA: dns; {reporting_mta}",
        f"Diagnostic-Code: smtp; {diagnostic}",
        "",
        f"--{boundary}",
        "Content-Description: Undelivered Message Headers",
        "Content-Type: text/rfc822-headers",
        "",
        _returned_headers(original),
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode()


def abuse_report(
    *,
    original: bytes,
    recipient: str,
    to: str,
    feedback_type: str = "abuse",
    reporting_domain: str = "isp.example",
    now: datetime | None = None,
) -> bytes:
    """An RFC 5965 feedback report: ``recipient`` marked ``original`` as spam; sent to ``to``."""
    now = now or datetime.now(timezone.utc)
    boundary = f"arf-{uuid.uuid4().hex}"
    lines = [
        f"From: feedback@{reporting_domain}",
        f"To: {to}",
        "Subject: FW: complaint about a message",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <{uuid.uuid4().hex}@{reporting_domain}>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This is an email abuse report for a message received from your domain.",
        "",
        f"--{boundary}",
        "Content-Type: message/feedback-report",
        "",
        f"Feedback-Type: {feedback_type}",
        "User-Agent: SomeGenerator/1.0",
        "Version: 1",
        f"Original-Rcpt-To: <{recipient}>",
        f"Arrival-Date: {format_datetime(now)}",
        f"Reported-Domain: {reporting_domain}",
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
        _returned_headers(original),
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode()
