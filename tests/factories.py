"""Builders for events and users used across tests."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from notiflow.contracts import IssueEvent, User, parse_event

ADMIN_EN = User(id="u-admin-en", name="Miora Rabe", email="miora@example.mg", locale="en", roles=["admin"])
ADMIN_FR = User(id="u-admin-fr", name="Hery Rasoa", email="hery@example.mg", locale="fr", roles=["admin"],
                is_on_call=True)
REPORTER = User(id="u-reporter", name="Lalao Rina", email="lalao@example.mg", locale="en", roles=["staff"])
ASSIGNEE = User(id="u-assignee", name="Rakoto Andry", email="rakoto@example.mg", locale="fr", roles=["staff"])
DIRECTORY = [ADMIN_EN, ADMIN_FR, REPORTER, ASSIGNEE]


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
        "created_at": "2026-11-25T08:00:00Z",
        "resolution_notes": None,
    }
    return base | overrides


def event_dict(event_type: str = "ISSUE_CREATED", *, issue: dict | None = None, actor: User = REPORTER,
               minutes: int = 0, **extra) -> dict:
    occurred = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc) + timedelta(minutes=minutes)
    return {
        "event_id": f"evt-{uuid.uuid4().hex[:10]}",
        "type": event_type,
        "occurred_at": occurred.isoformat(),
        "actor": ref(actor),
        "issue": issue or issue_dict(),
        **extra,
    }


def event(event_type: str = "ISSUE_CREATED", **kwargs) -> IssueEvent:
    return parse_event(event_dict(event_type, **kwargs))
