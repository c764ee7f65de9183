"""Builders for events and users used across tests.

Event times are relative to the clock the tests run against (this machine's,
which the Temporal dev server and PostgreSQL share), never fixed dates: a HIGH
issue stamped with a fixed day becomes overdue on arrival once that day is old
and the SLA adds an escalation mail. ``shifted`` moves every time by a fixed
offset, so a test can prove it does not depend on the calendar.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from notiflow.contracts import IssueEvent, User, parse_event

ADMIN_EN = User(id="u-admin-en", name="Miora Rabe", email="miora@example.mg", locale="en", roles=["admin"])
ADMIN_FR = User(
    id="u-admin-fr", name="Hery Rasoa", email="hery@example.mg", locale="fr", roles=["admin"], is_on_call=True
)
REPORTER = User(id="u-reporter", name="Lalao Rina", email="lalao@example.mg", locale="en", roles=["staff"])
ASSIGNEE = User(id="u-assignee", name="Rakoto Andry", email="rakoto@example.mg", locale="fr", roles=["staff"])
DIRECTORY = [ADMIN_EN, ADMIN_FR, REPORTER, ASSIGNEE]


#: Start of this test session, to the minute: every event time is an offset from it.
SESSION_START = datetime.now(timezone.utc).replace(second=0, microsecond=0)
_shift = timedelta(0)


def base_time() -> datetime:
    """The instant events are stamped from: the session's start, plus any ``shifted`` offset."""
    return SESSION_START + _shift


@contextlib.contextmanager
def shifted(offset: timedelta) -> Iterator[None]:
    """Stamp events built inside the block ``offset`` away from now (e.g. a year back or ahead)."""
    global _shift
    previous, _shift = _shift, offset
    try:
        yield
    finally:
        _shift = previous


def ref(user: User) -> dict:
    return {"id": user.id, "name": user.name, "email": user.email, "locale": user.locale}


def issue_dict(issue_id: str | None = None, **overrides) -> dict:
    base = {
        "id": issue_id or f"ISS-{uuid.uuid4().hex[:6]}",
        "title": "Licence card printer offline",
        "description": "The printer rejects every card.",
        "category": "HARDWARE",
        "priority": "HIGH",
        "status": "OPEN",
        "reporter": ref(REPORTER),
        "assignee": None,
        "is_auto_reported": False,
        "created_at": base_time().isoformat(),
        "resolution_notes": None,
    }
    return base | overrides


def event_dict(
    event_type: str = "ISSUE_CREATED", *, issue: dict | None = None, actor: User = REPORTER, minutes: int = 0, **extra
) -> dict:
    occurred = base_time() + timedelta(minutes=minutes)
    return {
        "event_id": f"evt-{uuid.uuid4().hex[:10]}",
        "type": event_type,
        "occurred_at": occurred.isoformat(),
        "actor": ref(actor) if actor else None,
        "issue": issue or issue_dict(),
        **extra,
    }


def event(event_type: str = "ISSUE_CREATED", **kwargs) -> IssueEvent:
    return parse_event(event_dict(event_type, **kwargs))
