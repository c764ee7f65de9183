"""Sample contexts: what a template of each type sees, shaped exactly as the workflows build it.

Variables a template sees: the keys of ``sample_context`` and ``locale`` (the template's own
locale). Used to validate templates when they are saved and to preview them.
"""

from __future__ import annotations

from typing import Any

from notiflow.templates.render import TEMPLATE_TYPES

_APP_URL = "http://tracker.example"
_RAKOTO = {"id": "u-7", "name": "Rakoto", "email": "rakoto@example.mg"}
_SOA = {"id": "u-3", "name": "Soa Randria", "email": "soa@example.mg"}


def _issue(**overrides: Any) -> dict[str, Any]:
    issue = {
        "id": "ISS-42",
        "title": "Licence card printer offline",
        "description": "The card printer at the Antananarivo office stopped printing licence cards this morning.",
        "category": "HARDWARE",
        "priority": "HIGH",
        "status": "OPEN",
        "reporter": dict(_RAKOTO),
        "assignee": dict(_SOA),
        "is_auto_reported": False,
        "created_at": "2026-11-25T08:00:00+00:00",
        "resolution_notes": None,
    }
    return issue | overrides


def _auto_issue(issue_id: str, title: str) -> dict[str, Any]:
    return _issue(
        id=issue_id,
        title=title,
        category="SYSTEM",
        priority="CRITICAL",
        reporter=None,
        assignee=None,
        is_auto_reported=True,
        created_at="2026-11-25T09:12:00+00:00",
        description="TypeError: Cannot read properties of undefined (reading 'expiry')\n"
        "    at renewLicence (renewal.js:118)",
    )


def _summary(days: int) -> dict[str, Any]:
    start = "2026-11-24T05:00:00+00:00" if days == 1 else "2026-11-18T05:00:00+00:00"
    return {
        "period_start": start,
        "period_end": "2026-11-25T05:00:00+00:00",
        "new_count": 7 * days,
        "resolved_count": 5 * days,
        "open_by_priority": {"CRITICAL": 1, "HIGH": 3, "MEDIUM": 6 * days, "LOW": 4 * days},
        "overdue": [
            {"id": "ISS-42", "title": "Licence card printer offline", "priority": "HIGH", "age_hours": 30.5},
            {"id": "ISS-17", "title": "Slow search in the driver registry", "priority": "MEDIUM", "age_hours": 80.0},
        ],
        "mean_hours_to_resolve": 9.4,
        "median_hours_to_resolve": 6.0,
        "top_categories": [{"category": "HARDWARE", "count": 3 * days}, {"category": "SOFTWARE", "count": 2 * days}],
        "auto_reported_count": 2 * days,
    }


def sample_context(notification_type: str) -> dict[str, Any]:
    """A realistic, complete context for ``notification_type``, shaped exactly as the
    workflows build it; used to validate templates and to preview them."""
    if notification_type not in TEMPLATE_TYPES:
        raise ValueError(f"unknown notification type {notification_type!r}")
    ctx: dict[str, Any] = {
        "notification_type": notification_type,
        "recipient": {
            "id": "u-1",
            "name": "Hery",
            "email": "hery@example.mg",
            "locale": "fr",
            "timezone": "Indian/Antananarivo",
        },
        "actor": dict(_RAKOTO),
        "issue": _issue(),
        "changes": None,
        "comment": None,
        "context": {},
        "app_url": _APP_URL,
        "issue_url": f"{_APP_URL}/admin/issues/ISS-42",
        "unsubscribe_url": f"{_APP_URL}/api/v1/notifications/unsubscribe?token=eyJhbGciOiJIUzI1NiJ9.sample",
        "data": {},
    }
    t = notification_type
    if t == "ISSUE_ASSIGNED":
        ctx["changes"] = {"assignee": {"old": None, "new": _SOA["id"]}}
    elif t == "ISSUE_STATUS_CHANGED":
        ctx |= {
            "actor": dict(_SOA),
            "changes": {"status": {"old": "OPEN", "new": "IN_PROGRESS"}},
            "issue": _issue(status="IN_PROGRESS"),
        }
    elif t == "ISSUE_RESOLVED":
        ctx |= {
            "actor": dict(_SOA),
            "changes": {"status": {"old": "IN_PROGRESS", "new": "RESOLVED"}},
            "issue": _issue(status="RESOLVED", resolution_notes="Replaced the ribbon and cleared the paper jam."),
        }
    elif t == "ISSUE_COMMENT_ADDED":
        ctx |= {
            "actor": dict(_SOA),
            "comment": {"id": "c-1", "body": "Spare ribbon ordered, arriving tomorrow.", "author": dict(_SOA)},
        }
    elif t == "ISSUE_REOPENED":
        ctx["changes"] = {"status": {"old": "RESOLVED", "new": "OPEN"}}
        ctx["issue"] = _issue(resolution_notes="Replaced the ribbon and cleared the paper jam.")
    elif t == "HIGH_PRIORITY_ISSUE":
        ctx["issue"] = _issue(priority="CRITICAL")
    elif t == "AUTO_ISSUE_DETECTED":
        ctx |= {
            "actor": None,
            "issue": _auto_issue("ISS-57", "TypeError in licence renewal form"),
            "issue_url": f"{_APP_URL}/admin/issues/ISS-57",
            "context": {"error_type": "CRITICAL_JS_ERROR", "url": "/renewals/new"},
        }
    elif t == "ISSUE_OVERDUE":
        ctx |= {
            "actor": None,
            "data": {"due_at": "2026-11-25T16:00:00+00:00", "overdue_hours": 5.5, "tier": 1, "audience": "admins"},
        }
    elif t in ("DAILY_ISSUE_SUMMARY", "WEEKLY_ISSUE_REPORT"):
        ctx |= {
            "actor": None,
            "issue": None,
            "issue_url": None,
            "data": _summary(1 if t == "DAILY_ISSUE_SUMMARY" else 7),
        }
    elif t == "SYSTEM_ERROR_SPIKE":
        ctx |= {
            "actor": None,
            "issue": _auto_issue("ISS-61", "NetworkError while saving a licence application"),
            "issue_url": f"{_APP_URL}/admin/issues/ISS-61",
            "data": {
                "recent_count": 48,
                "window_minutes": 5,
                "baseline_per_minute": 0.8,
                "threshold": 5.0,
                "per_minute": [3, 7, 11, 12, 15],
            },
        }
    elif t == "DIGEST":
        item = {
            "notification_type": "ISSUE_CREATED",
            "issue_id": "ISS-42",
            "title": "Licence card printer offline",
            "priority": "HIGH",
            "occurred_at": "2026-11-25T08:00:00+00:00",
            "subject": "[HIGH] New issue ISS-42: Licence card printer offline",
            "issue_url": f"{_APP_URL}/admin/issues/ISS-42",
            "resolved": False,
        }
        ctx |= {
            "actor": None,
            "issue": None,
            "issue_url": None,
            "data": {
                "period": "HOURLY",
                "items": [
                    item,
                    item
                    | {
                        "notification_type": "ISSUE_COMMENT_ADDED",
                        "occurred_at": "2026-11-25T08:20:00+00:00",
                        "subject": "[HIGH] New comment on ISS-42: Licence card printer offline",
                    },
                    {
                        "notification_type": "HIGH_PRIORITY_ISSUE",
                        "issue_id": "ISS-43",
                        "title": "Registry database unreachable",
                        "priority": "CRITICAL",
                        "occurred_at": "2026-11-25T08:35:00+00:00",
                        "subject": "[CRITICAL] High-priority issue ISS-43: Registry database unreachable",
                        "issue_url": f"{_APP_URL}/admin/issues/ISS-43",
                        "resolved": True,
                    },
                ],
            },
        }
    return ctx
