"""Reading what comes back to the bounce address: RFC 3464 DSNs, RFC 5965 abuse reports, other bounces.

Pure (no I/O): ``parse_report(raw)`` never raises; whatever it cannot read is a ``Report`` of kind
``UNKNOWN`` whose ``problem`` says why, so the receiver can keep it.

- **DSN** (``multipart/report; report-type=delivery-status``): per recipient ``Final-Recipient``, ``Action``
  (failed / delayed / delivered / relayed / expanded), ``Status`` (``5.1.1``), ``Diagnostic-Code``, read
  with the stdlib email parser (which splits ``message/delivery-status`` into its blocks).
- **ARF** (``multipart/report; report-type=feedback-report``): ``Feedback-Type`` (abuse, fraud, …),
  ``Original-Rcpt-To``.
- Anything else is given to flufl.bounce (Mailman's maintained detectors for non-standard bounces from
  Exim, qmail, Postfix's older formats, Microsoft, Yahoo, …): its permanent failures are hard bounces,
  its temporary ones soft.

In every case the original message's ``Message-ID`` is taken from the returned headers (a
``text/rfc822-headers`` or ``message/rfc822`` part), to match a report that lost its VERP code.
"""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

#: How a report counts: HARD (5.x.x), SOFT (4.x.x or delayed), COMPLAINT (ARF), NONE (delivered, not-spam, …)
HARD, SOFT, COMPLAINT, NONE = "HARD", "SOFT", "COMPLAINT", "NONE"
DSN, ARF, UNKNOWN = "DSN", "ARF", "UNKNOWN"

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
#: ARF feedback types that are not a complaint about the mail
_NOT_COMPLAINTS = {"not-spam"}


@dataclass
class RecipientStatus:
    """One recipient's fate as a report tells it."""

    address: str
    action: str | None = None
    status: str | None = None
    diagnostic: str | None = None

    @property
    def bounce_type(self) -> str:
        return classify(self.action, self.status)


@dataclass
class Report:
    kind: str
    recipients: list[RecipientStatus] = field(default_factory=list)
    #: the Message-ID of the mail the report is about, from its returned headers
    message_id: str | None = None
    #: ARF: abuse, fraud, virus, other, not-spam
    feedback_type: str | None = None
    #: why it could not be read as a report (kind UNKNOWN)
    problem: str | None = None
    #: which parser read it: "rfc3464", "rfc5965", "flufl.bounce"
    parser: str | None = None

    @property
    def bounce_type(self) -> str:
        """The report's type: a complaint, else the most serious of its recipients' (HARD > SOFT > NONE)."""
        if self.kind == ARF:
            return NONE if (self.feedback_type or "").lower() in _NOT_COMPLAINTS else COMPLAINT
        types = {r.bounce_type for r in self.recipients}
        return HARD if HARD in types else SOFT if SOFT in types else NONE


def classify(action: str | None, status: str | None) -> str:
    """5.x.x is a hard bounce, 4.x.x (or ``delayed``) a soft one; ``delivered``/``relayed``/``expanded`` none."""
    action = (action or "").strip().lower()
    if action in ("delivered", "relayed", "expanded"):
        return NONE
    code = (status or "").strip()
    if code.startswith("5"):
        return HARD if action != "delayed" else SOFT
    if code.startswith("4") or action == "delayed":
        return SOFT
    if action == "failed":
        return HARD
    return NONE


def status_code(value: str | None) -> str | None:
    """``5.1.1`` out of ``5.1.1 (bad destination mailbox)`` or a Diagnostic-Code such as ``smtp; 550 5.1.1 …``."""
    if not value:
        return None
    match = _STATUS.search(value)
    return ".".join(match.groups()) if match else None


def _address(value: str | None) -> str | None:
    """``rfc822; Someone@Example.org`` → ``Someone@Example.org``."""
    if not value:
        return None
    _, _, address = value.partition(";") if ";" in value else ("", "", value)
    address = address.strip().strip("<>").strip()
    return address or None


def _one_line(value: str | None, limit: int = 1000) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text[:limit] or None


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    match = re.search(r"<[^<>\s]+>", str(value))
    return match.group(0) if match else _one_line(value, 500)


def _returned_message_id(message: Message) -> str | None:
    """The original mail's Message-ID, from the first returned-headers or returned-message part."""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(part.get_payload())
            found = _message_id(HeaderParser(policy=compat32).parsestr(text.lstrip("\r\n")).get("Message-ID"))
            if found:
                return found
        elif content_type == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message):
                found = _message_id(inner.get("Message-ID"))
                if found:
                    return found
    return None


_QUOTED_ID = re.compile(rb"(?im)^message-id:[ \t]*(<[^<>\s]+>)")


def _quoted_message_id(raw: bytes) -> str | None:
    """A bounce that quotes the original in its body (qmail, Exim): the first ``Message-ID:`` line after its own headers."""
    body = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)
    match = _QUOTED_ID.search(body[1]) if len(body) == 2 else None
    return match.group(1).decode("ascii", "replace") if match else None


def _part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _delivery_status(message: Message) -> list[RecipientStatus]:
    part = _part(message, "message/delivery-status")
    if part is None:
        return []
    blocks = part.get_payload()
    if not isinstance(blocks, list):  # some senders' blocks arrive as text: read them ourselves
        text = blocks.decode("utf-8", "replace") if isinstance(blocks, bytes) else str(blocks)
        blocks = [HeaderParser(policy=compat32).parsestr(b.strip()) for b in re.split(r"\r?\n\s*\r?\n", text)]
    recipients = []
    for block in blocks[1:] if len(blocks) > 1 else blocks:  # the first block is per-message
        if not isinstance(block, Message):
            continue
        address = _address(block.get("Final-Recipient")) or _address(block.get("Original-Recipient"))
        if not address:
            continue
        diagnostic = _one_line(block.get("Diagnostic-Code"))
        recipients.append(
            RecipientStatus(
                address=address,
                action=_one_line(block.get("Action"), 32),
                status=status_code(block.get("Status")) or status_code(diagnostic),
                diagnostic=diagnostic,
            )
        )
    return recipients


def _feedback(message: Message) -> tuple[str | None, list[RecipientStatus]]:
    part = _part(message, "message/feedback-report")
    if part is None:
        return None, []
    payload = part.get_payload()
    if isinstance(payload, list):  # parsed as a message by some parsers
        fields = payload[0] if payload and isinstance(payload[0], Message) else None
    else:
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
        fields = HeaderParser(policy=compat32).parsestr(text.lstrip("\r\n"))
    if fields is None:
        return None, []
    feedback_type = _one_line(fields.get("Feedback-Type"), 32)
    recipients = [
        RecipientStatus(address=a, action=feedback_type)
        for value in fields.get_all("Original-Rcpt-To") or []
        if (a := _address(value))
    ]
    return feedback_type, recipients


def _flufl(message: Message) -> tuple[list[RecipientStatus], str | None]:
    """Mailman's detectors for bounces that are not RFC 3464, most authoritative first (as ``all_failures``).

    Each detector runs on its own: one choking on odd input (Yale's on a mail without ``From``) must not
    keep the others from reading it.
    """
    temporary: Set[bytes] = frozenset()
    permanent: Set[bytes] = frozenset()
    try:
        from flufl.bounce._scan import _DETECTORS as detectors
    except ImportError:  # a future flufl.bounce without the list: the public call, all or nothing
        from flufl.bounce import all_failures

        try:
            temporary, permanent = all_failures(message)
        except Exception as exc:
            return [], f"flufl.bounce failed: {type(exc).__name__}: {exc}"
    else:
        for detector in detectors:
            try:
                temporary, permanent = detector().process(message)
            except Exception:
                continue
            if temporary or permanent:
                break
    found = [RecipientStatus(a.decode("utf-8", "replace"), "failed") for a in sorted(permanent)]
    found += [RecipientStatus(a.decode("utf-8", "replace"), "delayed") for a in sorted(set(temporary) - set(permanent))]
    return found, None


def parse_report(raw: bytes) -> Report:
    """Read one message received at the bounce address; never raises."""
    try:
        message = message_from_bytes(raw, policy=compat32)
    except Exception as exc:
        return Report(UNKNOWN, problem=f"not a mail message: {type(exc).__name__}: {exc}")
    try:
        message_id = _returned_message_id(message) or _quoted_message_id(raw)
        if message.get_content_type() == "multipart/report":
            report_type = (message.get_param("report-type") or "").lower()  # type: ignore[union-attr]
            if report_type == "delivery-status":
                recipients = _delivery_status(message)
                if recipients:
                    return Report(DSN, recipients, message_id, parser="rfc3464")
            elif report_type == "feedback-report":
                feedback_type, recipients = _feedback(message)
                if feedback_type:
                    return Report(ARF, recipients, message_id, feedback_type=feedback_type, parser="rfc5965")
        recipients, problem = _flufl(message)
        if recipients:
            return Report(UNKNOWN, recipients, message_id, parser="flufl.bounce")
        return Report(
            UNKNOWN,
            message_id=message_id,
            problem=problem
            or "neither a delivery status notification (RFC 3464) nor an abuse report (RFC 5965), "
            "and no bounce detector recognised it",
        )
    except Exception as exc:
        return Report(UNKNOWN, problem=f"unreadable: {type(exc).__name__}: {exc}")
