"""Request and response bodies of the HTTP API (what /docs shows)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, time, timezone
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar, get_args
from urllib.parse import quote

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from activities.delivery.rows import UNRECORDED_OUTCOME, RowDecision
from notiflow.contracts import CRITICAL_TYPES, Channel, Frequency, NotificationType
from notiflow.models import NotificationLogRow, NotificationQueueRow, NotificationTemplateRow
from notiflow.settings import Settings
from notiflow.templates.render import TEMPLATE_TYPES
from notiflow.types import ClockTime, TimeZoneName


def _storable_instant(value: datetime) -> datetime:
    """0001-01-01T00:00+01:00 is a valid datetime but has no UTC equivalent: say so instead of the driver's error."""
    try:
        value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("is out of range: it must fall between years 1 and 9999 in UTC") from None
    return value


#: A time filter in a query string: with a zone, and one PostgreSQL can compare with.
Instant = Annotated[AwareDatetime, AfterValidator(_storable_instant)]
Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", max_length=16)]
#: Channels a person chooses for themselves; webhooks, Slack and Teams are subscriptions, not personal.
PersonalChannel = Literal["EMAIL", "IN_APP", "SMS", "PUSH"]
#: Notification types plus DIGEST (the hourly/daily round-up has a template of its own).
if TYPE_CHECKING:  # a Literal built from a tuple at run time; to the type checker, a string
    TemplateType = str
else:
    TemplateType = Literal[TEMPLATE_TYPES]


class _Request(BaseModel):
    """A misspelt field must fail loudly instead of being ignored."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ errors


class Error(BaseModel):
    detail: str = Field(description="what went wrong and what to do about it")


class FieldError(BaseModel):
    field: str = Field(examples=["preferences[0].frequency"])
    location: str = Field(examples=["body", "query", "path"])
    message: str


class ValidationFailure(Error):
    errors: list[FieldError] = Field(default_factory=list)


# ------------------------------------------------------------------ shared

Item = TypeVar("Item")


class CursorPage(BaseModel, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = Field(description="pass as ?cursor= to get the next page; null on the last page")


def workflow_ui_url(settings: Settings, workflow_id: str) -> str:
    """Where an operator sees (and can repair) the run in the Temporal web UI."""
    return f"{settings.public_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{quote(workflow_id, safe='')}"


class WorkflowStarted(BaseModel):
    workflow_id: str
    workflow_url: str

    @classmethod
    def of(cls, settings: Settings, workflow_id: str) -> WorkflowStarted:
        return cls(workflow_id=workflow_id, workflow_url=workflow_ui_url(settings, workflow_id))


# ------------------------------------------------------------------ preferences


class QuietHours(_Request):
    start: ClockTime = Field(examples=["22:00"], description="local time, HH:MM")
    end: ClockTime = Field(examples=["07:00"], description="local time, HH:MM; may be before start")

    @classmethod
    def of(cls, start: time | None, end: time | None) -> QuietHours | None:
        if start is None or end is None:
            return None
        return cls(start=start.strftime("%H:%M"), end=end.strftime("%H:%M"))


def critical_reason(notification_type: NotificationType) -> str:
    """Why a critical type's switches are locked (the 422 of a refused change, and ``locked_reason`` to show)."""
    return (
        f"{notification_type} is critical (it reports production being down) and is always sent "
        "immediately: it cannot be turned off or put in a digest"
    )


class PreferenceUpdate(_Request):
    notification_type: NotificationType
    channel: PersonalChannel
    enabled: bool = True
    frequency: Frequency = Frequency.IMMEDIATE
    digest_hour: int | None = Field(default=None, ge=0, le=23, description="for DAILY: the hour, in your time zone")

    @model_validator(mode="after")
    def _allowed(self) -> PreferenceUpdate:
        if self.notification_type in CRITICAL_TYPES and (not self.enabled or self.frequency != Frequency.IMMEDIATE):
            raise ValueError(critical_reason(self.notification_type))
        if self.frequency == Frequency.DAILY and self.digest_hour is None:
            raise ValueError("digest_hour (0-23, in your time zone) is required when frequency is DAILY")
        if self.frequency != Frequency.DAILY and self.digest_hour is not None:
            raise ValueError("digest_hour applies only when frequency is DAILY")
        return self


class PreferenceState(BaseModel):
    notification_type: NotificationType
    channel: Channel
    enabled: bool
    frequency: Frequency
    digest_hour: int | None
    critical: bool = Field(description="critical types are always delivered, whatever the preference")
    locked_reason: str | None = Field(default=None, description="for a critical type: why it cannot be changed")
    customized: bool = Field(description="false when this is the default (no choice stored)")


#: Each type × personal channel once: more entries than that can only be repeats.
MAX_PREFERENCES = len(NotificationType) * len(get_args(PersonalChannel))


class PreferencesUpdate(_Request):
    """Only the fields sent change; ``null`` timezone means the system default, ``null`` quiet_hours none."""

    timezone: TimeZoneName | None = None
    locale: Locale | None = None
    quiet_hours: QuietHours | None = None
    preferences: list[PreferenceUpdate] = Field(
        default_factory=list,
        max_length=MAX_PREFERENCES,
        description=f"at most {MAX_PREFERENCES} entries: each notification type × channel once",
    )

    @model_validator(mode="after")
    def _no_duplicates(self) -> PreferencesUpdate:
        counts = Counter((p.notification_type, p.channel) for p in self.preferences)
        duplicates = sorted(f"{t} × {c}" for (t, c), count in counts.items() if count > 1)
        if duplicates:
            raise ValueError(f"each type × channel may appear once; repeated: {', '.join(duplicates)}")
        return self


class NotificationSettings(BaseModel):
    user_id: str
    timezone: str = Field(description="the person's time zone, or the system default when they chose none")
    locale: str
    quiet_hours: QuietHours | None
    preferences: list[PreferenceState]


# ------------------------------------------------------------------ templates


class TemplateKey(_Request):
    notification_type: TemplateType
    channel: Channel
    locale: Locale = "en"


class TemplateContent(_Request):
    subject_template: str | None = Field(default=None, examples=["Issue assigned: {{ issue.title }}"])
    body_template: str = Field(min_length=1)
    html_template: str | None = None


class TemplateDraft(TemplateKey, TemplateContent):
    pass


class TemplateCreate(TemplateDraft):
    display_name: str | None = Field(default=None, max_length=150)
    description: str | None = None


class TemplateEdit(_Request):
    """Fields left out keep their value from the version being edited."""

    subject_template: str | None = None
    body_template: str | None = Field(default=None, min_length=1)
    html_template: str | None = None
    display_name: str | None = Field(default=None, min_length=1, max_length=150)
    description: str | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> TemplateEdit:
        sent = self.model_fields_set
        cleared = [f for f in ("body_template", "display_name") if f in sent and getattr(self, f) is None]
        if cleared:
            raise ValueError(f"{' and '.join(cleared)} cannot be null; leave the field out to keep its value")
        return self


class TemplateOut(BaseModel):
    id: uuid.UUID
    name: str
    display_name: str
    description: str | None
    notification_type: str
    channel: str
    locale: str
    subject_template: str | None
    body_template: str
    html_template: str | None
    version: int
    is_active: bool
    created_by: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: NotificationTemplateRow) -> TemplateOut:
        return cls(
            id=row.id,
            name=row.name,
            display_name=row.display_name,
            description=row.description,
            notification_type=row.notification_type,
            channel=row.template_type,
            locale=row.locale,
            subject_template=row.subject_template,
            body_template=row.body_template,
            html_template=row.html_template,
            version=row.version,
            is_active=row.is_active,
            created_by=row.created_by,
            created_at=row.created_at,
        )


class TemplatePreviewRequest(_Request):
    template_id: uuid.UUID | None = Field(default=None, description="preview a stored version …")
    template: TemplateDraft | None = Field(default=None, description="… or a draft that is not saved")
    context: dict[str, Any] | None = Field(default=None, description="variables; default: sample data for the type")

    @model_validator(mode="after")
    def _one_source(self) -> TemplatePreviewRequest:
        if (self.template_id is None) == (self.template is None):
            raise ValueError("give exactly one of template_id (a stored version) or template (a draft)")
        return self


class TemplatePreview(BaseModel):
    subject: str | None
    text: str
    html: str | None
    context: dict[str, Any] = Field(description="the variables the preview was rendered with")


# ------------------------------------------------------------------ queue


class DeliveryAttempt(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    status: str
    sent_at: datetime | None
    error_details: str | None
    created_at: datetime


class EngagementItem(BaseModel):
    """What the recipient did with a row: once per kind, the first time, the last and how often."""

    model_config = ConfigDict(from_attributes=True)

    kind: str = Field(
        examples=["CLICKED"], description="SEEN READ CLICKED ARCHIVED OPENED BOUNCED COMPLAINED UNSUBSCRIBED"
    )
    occurred_at: datetime = Field(description="the first time")
    last_at: datetime
    count: int
    detail: dict | None = Field(default=None, description='e.g. {"link": "issue"}; {"machine": true} for a proxy open')


class QueueItem(BaseModel):
    id: uuid.UUID
    notification_type: str
    channel: str
    status: str
    recipient_id: str | None
    address: str | None
    template_name: str
    subject: str | None
    content: str
    event_id: str | None
    issue_id: str | None
    scheduled_at: datetime
    sent_at: datetime | None
    created_at: datetime
    error_message: str | None
    retry_count: int
    max_retries: int
    provider: str | None = Field(default=None, description="who took it: e.g. smtp:fallback relay.example:25")
    fallback_of: str | None = Field(
        default=None, description="a critical notification's fallback: the FAILED row it replaces"
    )
    fallback_to: str | None = Field(default=None, description="this FAILED critical row went out instead as that row")
    decision: RowDecision | None = Field(
        default=None,
        description="the decision taken for it, stored when taken (sent, skipped and why, held until, rate-capped, "
        "digested, fell back, re-queued); null for rows stored before decisions were",
    )
    variant: str | None = Field(
        default=None, description="the experiment arm it was planned in (decision.experiment names the experiment)"
    )
    workflow_id: str | None
    workflow_url: str | None = Field(description="the run in the Temporal web UI")
    attempts: list[DeliveryAttempt]
    engagement: list[EngagementItem] = Field(default_factory=list, description="seen, read, clicked, opened, bounced…")

    @classmethod
    def of(cls, row: NotificationQueueRow, attempts: list[NotificationLogRow], settings: Settings) -> QueueItem:
        return cls(
            id=row.id,
            notification_type=row.notification_type,
            channel=row.delivery_method,
            status=row.status,
            recipient_id=row.recipient_id,
            address=row.address,
            template_name=row.template_name,
            subject=row.subject,
            content=row.content,
            event_id=row.event_id,
            issue_id=row.issue_id,
            scheduled_at=row.scheduled_at,
            sent_at=row.sent_at,
            created_at=row.created_at,
            error_message=row.error_message,
            retry_count=row.retry_count,
            max_retries=row.max_retries,
            provider=row.provider,
            fallback_of=(row.context_data or {}).get("fallback_of"),
            fallback_to=((row.context_data or {}).get("fallback_to") or {}).get("queue_id"),
            decision=RowDecision.read(row.decision),
            variant=row.variant,
            workflow_id=row.workflow_id,
            workflow_url=workflow_ui_url(settings, row.workflow_id) if row.workflow_id else None,
            attempts=[DeliveryAttempt.model_validate(a) for a in attempts],
        )


class SendTestRequest(_Request):
    template_name: str | None = Field(default=None, examples=["ISSUE_ASSIGNED.EMAIL.en"])
    notification_type: NotificationType | None = None
    recipient_id: str = Field(min_length=1, max_length=64)
    channel: Channel | None = Field(default=None, description="default: the template's channel, else EMAIL")

    @model_validator(mode="after")
    def _one_template(self) -> SendTestRequest:
        if (self.template_name is None) == (self.notification_type is None):
            raise ValueError("give exactly one of template_name or notification_type")
        return self


# ------------------------------------------------------------------ inbox


class InboxItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    notification_type: str
    issue_id: str | None
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None
    archived_at: datetime | None


class InboxPage(CursorPage[InboxItem]):
    unread_count: int


class UnreadCount(BaseModel):
    unread_count: int


class ReadAllResult(BaseModel):
    marked_read: int
    unread_count: int


# ------------------------------------------------------------------ analytics


class DeliveryCount(BaseModel):
    notification_type: str
    channel: str
    status: str
    count: int


class DeliveryRates(BaseModel):
    sent: int
    failed: int
    success_rate: float | None = Field(description="sent / (sent + failed); null when nothing finished")
    median_seconds_to_send: float | None = Field(description="median of sent_at - created_at over SENT rows")


class ChannelRates(DeliveryRates):
    channel: str


class DeliveryAnalytics(DeliveryRates):
    created_from: datetime
    created_to: datetime
    total: int
    by_channel: list[ChannelRates]
    counts: list[DeliveryCount]
    decisions: dict[str, int] = Field(
        default_factory=dict,
        description="rows by the decision stored on them (SEND, SKIPPED, HELD, RATE_CAPPED, DIGESTED, FELL_BACK, "
        f"FAILED, REQUEUED); {UNRECORDED_OUTCOME} for rows stored before decisions were",
    )


# ------------------------------------------------------------------ audit


class AuditEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    at: datetime
    actor: str = Field(description="the user id of the token that asked")
    action: str = Field(examples=["send_test", "template.update"])
    target: str | None = Field(description="what it was done to, e.g. a template name or a workflow id")
    details: dict[str, Any] | None = Field(description="what changed (before/after, filters, counts); never secrets")


# ------------------------------------------------------------------ health


class Readiness(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str]


class NotReady(Error):
    checks: dict[str, str]
