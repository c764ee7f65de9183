"""VERP: each mail's envelope sender names the queue row it carries, so a bounce says which mail failed.

With ``NOTIFLOW_BOUNCE_ADDRESS=bounces@tracker.example`` the mail of queue row ``q`` is sent with
``MAIL FROM:<bounces+{code}@tracker.example>``; a delivery status notification comes back to that address
and ``code`` gives the row. The code is the row's id (a random UUID, not a counter) in lowercase base32:
26 characters that survive mail systems which fold the case of local parts.
"""

from __future__ import annotations

import base64
import binascii
import uuid


def verp_code(queue_id: str | uuid.UUID) -> str:
    """The code of a queue row: its 128-bit id, base32, lowercase, unpadded (26 characters)."""
    raw = uuid.UUID(str(queue_id)).bytes
    return base64.b32encode(raw).decode().rstrip("=").lower()


def queue_id_of(code: str) -> uuid.UUID | None:
    """The queue row a code names; None when it is not one of ours."""
    if len(code) != 26:
        return None
    try:
        return uuid.UUID(bytes=base64.b32decode(code.upper() + "======"))
    except (binascii.Error, ValueError):
        return None


def envelope_sender(queue_id: str, bounce_address: str | None, default: str) -> str:
    """``bounces+{code}@domain`` for the row, or ``default`` (EMAIL_FROM) when no bounce address is set."""
    if not bounce_address:
        return default
    local, _, domain = bounce_address.partition("@")
    return f"{local}+{verp_code(queue_id)}@{domain}"


def code_from_address(address: str, bounce_address: str) -> tuple[bool, str | None]:
    """Is ``address`` the bounce address or one of its VERP forms, and which code it carries (if any)."""
    local, _, domain = bounce_address.partition("@")
    got_local, at, got_domain = address.strip().strip("<>").rpartition("@")
    if not at or got_domain.lower() != domain.lower():
        return False, None
    if got_local.lower() == local.lower():
        return True, None
    base, plus, code = got_local.partition("+")
    if not plus or base.lower() != local.lower() or not code:
        return False, None
    return True, code.lower()
