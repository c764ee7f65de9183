"""The suppression list's vocabulary and its pure rules: reasons, scopes, address forms, what a skip says.

No I/O: planning (``activities/delivery/planning.py``) uses these beside its own pure rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from notiflow.contracts import Channel, normalise_phone

#: Reasons an address is on the list.
HARD_BOUNCE, SOFT_BOUNCE_LIMIT, COMPLAINT_REASON, MANUAL, INVALID = (
    "HARD_BOUNCE",
    "SOFT_BOUNCE_LIMIT",
    "COMPLAINT",
    "MANUAL",
    "INVALID",
)
REASONS = (HARD_BOUNCE, SOFT_BOUNCE_LIMIT, COMPLAINT_REASON, MANUAL, INVALID)
#: Scopes: every notification, or only the non-critical ones (a complaint).
ALL, NON_CRITICAL = "ALL", "NON_CRITICAL"
#: Who adds entries when no person does.
SYSTEM = "notiflow"

_LABELS = {
    HARD_BOUNCE: "hard bounce",
    SOFT_BOUNCE_LIMIT: "repeated soft bounces",
    COMPLAINT_REASON: "complaint",
    MANUAL: "added by an admin",
    INVALID: "invalid address",
}


class Entry(Protocol):
    """What ``describe`` and ``applies`` read of a suppression (a ``SuppressionRow``)."""

    reason: str
    scope: str
    status_code: str | None
    created_at: datetime


def normalise_address(channel: str, address: str) -> str:
    """The form an address is listed under: lowercase email, E.164 phone, anything else trimmed."""
    address = address.strip()
    if channel == Channel.EMAIL:
        return address.strip("<>").lower()
    if channel == Channel.SMS:
        try:
            return normalise_phone(address) or address
        except ValueError:
            return address
    return address


def describe(entry: Entry) -> str:
    """What a skipped row says: ``suppressed: hard bounce 5.1.1 on 2026-12-01``."""
    label = _LABELS.get(entry.reason, entry.reason.lower())
    code = f" {entry.status_code}" if entry.status_code else ""
    scope = " (non-critical mail)" if entry.scope == NON_CRITICAL else ""
    return f"suppressed: {label}{code} on {entry.created_at:%Y-%m-%d}{scope}"


def applies(entry: Entry, *, critical: bool) -> bool:
    """A complaint (scope NON_CRITICAL) lets critical notifications through; every other entry stops all."""
    return entry.scope == ALL or not critical
