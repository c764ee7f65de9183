"""The event contract between the issue system and notiflow (pydantic v2).

These models are also the inputs and outputs of workflows and activities, so
they stay free of I/O and cheap to import (the workflow sandbox imports them
through passthrough).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

import email_validator  # noqa: F401  (EmailStr's validator: loaded here, outside the workflow sandbox)
import phonenumbers
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator, model_validator

from notiflow.keys import event_workflow_id
from notiflow.types import ClockTime, TimeZoneName


class EventType(StrEnum):
    """Events the issue system sends."""

    ISSUE_CREATED = "ISSUE_CREATED"
    ISSUE_ASSIGNED = "ISSUE_ASSIGNED"
    ISSUE_STATUS_CHANGED = "ISSUE_STATUS_CHANGED"
    ISSUE_RESOLVED = "ISSUE_RESOLVED"
    ISSUE_COMMENT_ADDED = "ISSUE_COMMENT_ADDED"
    ISSUE_REOPENED = "ISSUE_REOPENED"
    AUTO_ISSUE_DETECTED = "AUTO_ISSUE_DETECTED"


class NotificationType(StrEnum):
    """Every kind of message notiflow sends (the tracker team's list plus reopen)."""

    ISSUE_CREATED = "ISSUE_CREATED"
    ISSUE_ASSIGNED = "ISSUE_ASSIGNED"
    ISSUE_STATUS_CHANGED = "ISSUE_STATUS_CHANGED"
    ISSUE_RESOLVED = "ISSUE_RESOLVED"
    ISSUE_COMMENT_ADDED = "ISSUE_COMMENT_ADDED"
    ISSUE_REOPENED = "ISSUE_REOPENED"
    HIGH_PRIORITY_ISSUE = "HIGH_PRIORITY_ISSUE"
    AUTO_ISSUE_DETECTED = "AUTO_ISSUE_DETECTED"
    ISSUE_OVERDUE = "ISSUE_OVERDUE"
    DAILY_ISSUE_SUMMARY = "DAILY_ISSUE_SUMMARY"
    WEEKLY_ISSUE_REPORT = "WEEKLY_ISSUE_REPORT"
    SYSTEM_ERROR_SPIKE = "SYSTEM_ERROR_SPIKE"


#: Types a person cannot switch off: they are about production being down.
CRITICAL_TYPES: frozenset[NotificationType] = frozenset(
    {NotificationType.AUTO_ISSUE_DETECTED, NotificationType.SYSTEM_ERROR_SPIKE}
)


class Priority(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class IssueStatus(StrEnum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


def is_closed(status: IssueStatus | str) -> bool:
    """RESOLVED and CLOSED end an issue's escalations; any other status is open."""
    return status in (IssueStatus.RESOLVED, IssueStatus.CLOSED)


class Channel(StrEnum):
    EMAIL = "EMAIL"
    IN_APP = "IN_APP"
    SMS = "SMS"
    PUSH = "PUSH"
    WEBHOOK = "WEBHOOK"
    SLACK = "SLACK"
    TEAMS = "TEAMS"


#: Channels every person has unless they switch them off; the shipped templates cover them.
DEFAULT_CHANNELS: tuple[Channel, ...] = (Channel.EMAIL, Channel.IN_APP)


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Frequency(StrEnum):
    IMMEDIATE = "IMMEDIATE"
    HOURLY = "HOURLY"
    DAILY = "DAILY"


#: One limit on both sides of Temporal: what `publish` and `POST /events` accept, the worker can decode.
#: (Its JSON decoder stops at 200 levels; Temporal refuses payloads over 2 MB.)
MAX_CONTEXT_DEPTH = 32
MAX_EVENT_BYTES = 256 * 1024

#: Control characters (C0, DEL, C1, line/paragraph separators): never in a name, id or title — one CR/LF in a
#: name was enough to add a Bcc: header to a mail.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _single_line(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("must not contain control characters (line breaks, tabs, NUL …)")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of JSON-like data, without recursion (hostile input may be thousands deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        items: Iterable[Any]
        if isinstance(item, dict):
            items = item.values()
        elif isinstance(item, (list, tuple)):
            items = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_CONTEXT_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in items)
    return deepest


def _without_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL: refuse it at the door rather than inside an activity."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _without_nul(key)
            _without_nul(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _without_nul(item)
    return value


#: Where a phone number written without its country code is read (NOTIFLOW_SMS_DEFAULT_REGION, read once here
#: so the contract stays free of settings I/O; the worker and API validate the same variable at start-up).
PHONE_REGION = (os.environ.get("NOTIFLOW_SMS_DEFAULT_REGION") or "MG").strip().upper()


def normalise_phone(value: str | None, region: str | None = None) -> str | None:
    """A phone number in E.164 (``+261341234567``); a national one ("034 12 345 67") is read in ``region``."""
    if value is None or not value.strip():
        return None
    region = region or PHONE_REGION
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number (+261 34 12 345 67, or national in {region}): {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"not a valid phone number (read in {region} when written without +country code)")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class _Strict(BaseModel):
    """Unknown fields are an error: a typo in the issue system must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return value if isinstance(value, BaseModel) else _without_nul(value)


class UserRef(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=32)
    locale: str | None = Field(default=None, max_length=16)

    @field_validator("id", "name", "locale")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        return _single_line(value)

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        return normalise_phone(value)


#: The role that makes an admin "on call" (same fact as ``User.is_on_call``).
ON_CALL_ROLE = "on_call"


class User(UserRef):
    """A directory entry, as `NotificationClient.sync_users` takes it."""

    roles: list[str] = Field(default_factory=list)
    is_on_call: bool = False
    timezone: TimeZoneName | None = None
    quiet_hours_start: ClockTime | None = None
    quiet_hours_end: ClockTime | None = None
    is_active: bool = True

    @model_validator(mode="before")
    @classmethod
    def _on_call_is_a_role(cls, data: Any) -> Any:
        """DESIGN §2 names "roles such as admin, on_call": the role and the flag are one fact, kept in step."""
        # Only a well-formed list is touched: anything else (`"roles": true`) is left for the field's own
        # validation to refuse, naming the field — found by tests/api/test_properties.py as a 500.
        if isinstance(data, dict) and isinstance(data.get("roles") or [], list):
            roles = list(data.get("roles") or [])
            on_call = bool(data.get("is_on_call")) or ON_CALL_ROLE in roles
            if on_call and ON_CALL_ROLE not in roles:
                roles.append(ON_CALL_ROLE)
            data = {**data, "roles": roles, "is_on_call": on_call}
        return data


class Issue(_Strict):
    id: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=500)
    description: str | None = None
    category: str | None = Field(default=None, max_length=64)
    priority: Priority
    status: IssueStatus = IssueStatus.OPEN
    reporter: UserRef | None = None
    assignee: UserRef | None = None
    is_auto_reported: bool = False
    created_at: datetime
    resolution_notes: str | None = None

    @field_validator("id", "title", "category")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        return _single_line(value)


class FieldChange(_Strict):
    old: Any = None
    new: Any = None


class Comment(_Strict):
    id: str | None = None
    body: str = Field(min_length=1)
    author: UserRef | None = None


class IssueEvent(_Strict):
    event_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")
    type: EventType
    occurred_at: datetime
    actor: UserRef | None = None
    issue: Issue
    changes: dict[str, FieldChange] | None = None
    comment: Comment | None = None
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must include a time zone (e.g. 2026-11-25T08:00:00Z)")
        return value

    @field_validator("context")
    @classmethod
    def _shallow(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _depth(value) > MAX_CONTEXT_DEPTH:
            raise ValueError(f"nested deeper than {MAX_CONTEXT_DEPTH} levels (MAX_CONTEXT_DEPTH)")
        return value

    @model_validator(mode="after")
    def _small_enough(self) -> IssueEvent:
        size = len(self.model_dump_json())
        if size > MAX_EVENT_BYTES:
            raise ValueError(f"event is {size} bytes as JSON, over the {MAX_EVENT_BYTES}-byte limit (MAX_EVENT_BYTES)")
        return self

    @property
    def workflow_id(self) -> str:
        return event_workflow_id(self.event_id)


class InvalidEvent(ValueError):
    """An event failed validation; the message names every bad field."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        parts = []
        for err in errors:
            where = ".".join(str(p) for p in err["loc"]) or "event"
            parts.append(f"{where}: {err['msg']}")
        super().__init__("invalid IssueEvent — " + "; ".join(parts))


def parse_event(data: str | bytes | dict[str, Any]) -> IssueEvent:
    """Validate raw JSON or a dict into an IssueEvent, raising InvalidEvent naming the fields."""
    if isinstance(data, (str, bytes)) and len(data) > MAX_EVENT_BYTES:
        raise InvalidEvent(
            [{"loc": (), "msg": f"event is {len(data)} bytes, over the {MAX_EVENT_BYTES}-byte limit (MAX_EVENT_BYTES)"}]
        )
    try:
        if isinstance(data, (str, bytes)):
            return IssueEvent.model_validate_json(data)
        return IssueEvent.model_validate(data)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = [dict(e) for e in exc.errors(include_url=False)]
        if any(e["type"] == "json_invalid" and "recursion limit" in e["msg"] for e in errors):
            errors = [
                {"loc": ("context",), "msg": f"nested deeper than {MAX_CONTEXT_DEPTH} levels (MAX_CONTEXT_DEPTH)"}
            ]
        raise InvalidEvent(errors) from None
    except RecursionError:
        raise InvalidEvent(
            [{"loc": ("context",), "msg": f"nested deeper than {MAX_CONTEXT_DEPTH} levels (MAX_CONTEXT_DEPTH)"}]
        ) from None
