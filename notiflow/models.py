"""SQLAlchemy 2 models. The tracker team's four tables keep their names and
columns; notiflow's own tables sit beside them (DESIGN §5).

User ids are strings (the issue system's ids, e.g. ``u-7``) rather than the
tracker note's UUIDs: notiflow mirrors the directory, it does not own it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    exists,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table(model: type[Base]) -> Table:
    """A model's Core table, for executemany statements (typed: ``__table__`` is declared as a FromClause)."""
    return cast(Table, model.__table__)


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class UserRow(Base):
    """Mirror of the issue system's directory: who exists, how to reach them."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(16), server_default="en")
    timezone: Mapped[str | None] = mapped_column(String(64))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")
    is_on_call: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    quiet_hours_start: Mapped[time | None] = mapped_column(Time)
    quiet_hours_end: Mapped[time | None] = mapped_column(Time)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (Index(None, "roles", postgresql_using="gin"),)


class IssueRow(Base):
    """Latest snapshot of each issue, as the newest event (by occurred_at) described it."""

    __tablename__ = "issues"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reporter_id: Mapped[str | None] = mapped_column(String(64))
    assignee_id: Mapped[str | None] = mapped_column(String(64))
    is_auto_reported: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    resolution_notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        Index(None, "created_at"),
        Index(None, "resolved_at"),
        Index(None, "status", "priority"),
    )


class IssueEventRow(Base):
    """Every event received; event_id is the issue system's idempotency key."""

    __tablename__ = "issue_events"

    id: Mapped[uuid.UUID] = _uuid_pk()
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    issue_id: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = _created_at()
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict] = mapped_column(JSONB)

    __table_args__ = (
        Index(None, "issue_id", "occurred_at"),
        Index(None, "occurred_at", "type"),
    )


class NotificationTemplateRow(Base):
    """The tracker's template table, extended with type, channel, locale, HTML and versions.

    ``name`` is ``{notification_type}.{channel}.{locale}``; each edit inserts a new
    version and deactivates the previous one, so history is kept.
    """

    __tablename__ = "notification_templates"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(150))
    description: Mapped[str | None] = mapped_column(Text)
    template_type: Mapped[str] = mapped_column(String(50))  # the channel, as the tracker named it
    notification_type: Mapped[str] = mapped_column(String(50))
    locale: Mapped[str] = mapped_column(String(16), server_default="en")
    subject_template: Mapped[str | None] = mapped_column(Text)
    body_template: Mapped[str] = mapped_column(Text)
    html_template: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        UniqueConstraint("name", "version"),
        Index("uq_notification_templates_active_name", "name", unique=True, postgresql_where=text("is_active")),
        Index(None, "notification_type", "template_type", "locale"),
    )


class NotificationPreferenceRow(Base):
    """Per user × type × channel: on/off and how often (tracker table + frequency)."""

    __tablename__ = "notification_preferences"

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"))
    notification_type: Mapped[str] = mapped_column(String(50))
    delivery_method: Mapped[str] = mapped_column(String(20))
    is_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    frequency: Mapped[str] = mapped_column(String(16), server_default="IMMEDIATE")
    digest_hour: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (UniqueConstraint("user_id", "notification_type", "delivery_method"),)


class NotificationQueueRow(Base):
    """One row per (event, notification type, recipient, channel): the unit of delivery.

    ``dedupe_key`` makes a duplicate event or a replayed activity find the row
    that already exists instead of sending again.
    """

    __tablename__ = "notification_queue"

    id: Mapped[uuid.UUID] = _uuid_pk()
    recipient_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("users.id", ondelete="SET NULL"))
    template_name: Mapped[str] = mapped_column(String(100))
    delivery_method: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str | None] = mapped_column(String(255))
    content: Mapped[str] = mapped_column(Text)
    html_content: Mapped[str | None] = mapped_column(Text)
    context_data: Mapped[dict | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20), server_default="PENDING")
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error_message: Mapped[str | None] = mapped_column(Text)
    retry_count: Mapped[int] = mapped_column(Integer, server_default="0")
    max_retries: Mapped[int] = mapped_column(Integer, server_default="3")
    created_at: Mapped[datetime] = _created_at()
    # notiflow's extensions
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    event_id: Mapped[str | None] = mapped_column(String(128))
    notification_type: Mapped[str] = mapped_column(String(50))
    issue_id: Mapped[str | None] = mapped_column(String(64))
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    provider_message_id: Mapped[str | None] = mapped_column(String(300))
    provider_response: Mapped[str | None] = mapped_column(Text)
    #: which system took it (``smtp:primary mail:25``, ``smtp:fallback relay:25``, ``sms:json gateway``)
    provider: Mapped[str | None] = mapped_column(String(200))
    #: the decision taken for it, stored when taken (``activities/delivery/rows.py : RowDecision``);
    #: NULL for rows stored before decisions were
    decision: Mapped[dict | None] = mapped_column(JSONB)
    #: the experiment arm it was planned in (``decision.experiment`` says which experiment), for cheap grouping
    variant: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        Index(None, "created_at", "id"),
        Index(None, "status", "created_at"),
        Index(None, "recipient_id", "created_at"),
        Index(None, "issue_id"),
        Index(None, "event_id"),
        Index(None, "delivery_method", "status"),
        # A paged plan's next page: its source's PENDING rows (``pending_page``); small, since rows leave it as sent.
        Index(
            "ix_notification_queue_pending_source",
            text("(context_data ->> 'source_id')"),
            postgresql_where=text("status = 'PENDING'"),
        ),
    )


class NotificationLogRow(Base):
    """One row per delivery attempt, successful or not (audit trail)."""

    __tablename__ = "notification_logs"

    id: Mapped[uuid.UUID] = _uuid_pk()
    queue_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("notification_queue.id", ondelete="CASCADE")
    )
    user_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("users.id", ondelete="SET NULL"))
    notification_type: Mapped[str] = mapped_column(String(50))
    delivery_method: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int] = mapped_column(Integer, server_default="1")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error_details: Mapped[str | None] = mapped_column(Text)
    context: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (Index(None, "queue_id", "created_at"), Index(None, "created_at"))


class InAppNotificationRow(Base):
    """A message in a person's in-app inbox."""

    __tablename__ = "in_app_notifications"

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"))
    queue_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("notification_queue.id", ondelete="SET NULL"), unique=True
    )
    notification_type: Mapped[str] = mapped_column(String(50))
    issue_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _created_at()
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index(
            "ix_in_app_notifications_inbox",
            "user_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("archived_at IS NULL"),
        ),
        Index(
            "ix_in_app_notifications_unread",
            "user_id",
            postgresql_where=text("read_at IS NULL AND archived_at IS NULL"),
        ),
    )


class InboxCountRow(Base):
    """A person's unread, unarchived in-app notifications, kept exact by triggers on ``in_app_notifications``.

    Migration 0013's triggers add and subtract as rows are inserted, read, unread, archived or deleted
    (whatever writes them), so the bell's count is one primary-key read instead of a scan of the inbox.
    No foreign key: deleting a person cascades to their rows, whose trigger then settles this one at 0.
    """

    __tablename__ = "inbox_counts"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unread: Mapped[int] = mapped_column(Integer, server_default="0")


class WebhookSubscriptionRow(Base):
    """An outgoing hook (generic webhook, Slack or Teams) and what it wants to hear.

    ``channel`` is the API's ``kind``. A WEBHOOK signs with ``secret`` (``whsec_…``); after a
    rotation it also signs with ``previous_secret`` until ``previous_secret_expires_at``.
    ``deactivated_reason`` says why notiflow switched it off (the receiver answered 410 Gone).
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))  # WEBHOOK, SLACK, TEAMS
    url: Mapped[str] = mapped_column(String(1000))
    secret: Mapped[str | None] = mapped_column(String(200))
    notification_types: Mapped[list[str]] = mapped_column(ARRAY(String(50)), server_default="{}")
    min_priority: Mapped[str | None] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = _created_at()
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deactivated_reason: Mapped[str | None] = mapped_column(Text)


class EscalationPolicyRow(Base):
    """How long an issue of a priority may stay open, and who hears when it does.

    ``tiers`` is a list of ``{"after_minutes": int, "audience": "admins"|"on_call"}``
    counted from the due time; the last tier repeats ``repeat_last`` times every
    ``repeat_every_minutes``.
    """

    __tablename__ = "escalation_policies"

    id: Mapped[uuid.UUID] = _uuid_pk()
    priority: Mapped[str] = mapped_column(String(16), unique=True)
    due_minutes: Mapped[int] = mapped_column(Integer)
    tiers: Mapped[list[dict]] = mapped_column(JSONB, server_default="[]")
    repeat_last: Mapped[int] = mapped_column(Integer, server_default="0")
    repeat_every_minutes: Mapped[int] = mapped_column(Integer, server_default="240")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ReadEscalationRow(Base):
    """Escalation on unread: a notification of this type that nobody read (or clicked) within
    ``after_minutes`` also goes out on ``channel`` to those who did not (only while ``enabled``)."""

    __tablename__ = "read_escalations"

    notification_type: Mapped[str] = mapped_column(String(50), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    after_minutes: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    updated_by: Mapped[str | None] = mapped_column(String(64))


class AuditLogRow(Base):
    """Who did what to notiflow's configuration or queue, and when (admin actions, redeliveries).

    ``details`` holds what changed (e.g. before/after of a template, the filters of a
    redelivery and how many rows it re-queued); never secrets.
    """

    __tablename__ = "audit_log"

    id: Mapped[uuid.UUID] = _uuid_pk()
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict | None] = mapped_column(JSONB)

    __table_args__ = (Index(None, "at"), Index(None, "action", "at"))


class SuppressionRow(Base):
    """An address notiflow must not send to on a channel (DESIGN §4): hard bounce, complaint, manual, invalid.

    ``address`` is normalised (lowercase email, E.164 phone, the subscription id of a hook). At most one
    entry per (channel, address) is ``active``; removing one keeps it (``removed_at``, ``removed_by``).
    ``scope`` ``NON_CRITICAL`` (a complaint) still lets critical notifications through.
    """

    __tablename__ = "suppressions"

    id: Mapped[uuid.UUID] = _uuid_pk()
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(500))
    #: HARD_BOUNCE, SOFT_BOUNCE_LIMIT, COMPLAINT, MANUAL, INVALID
    reason: Mapped[str] = mapped_column(String(32))
    #: ALL, or NON_CRITICAL (critical notifications still go)
    scope: Mapped[str] = mapped_column(String(16), server_default="ALL")
    status_code: Mapped[str | None] = mapped_column(String(32))
    status_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    queue_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("notification_queue.id", ondelete="SET NULL")
    )
    #: who added it: an admin's id (MANUAL), else ``notiflow``
    created_by: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index("uq_suppressions_active_address", "channel", "address", unique=True, postgresql_where=text("active")),
        Index(None, "created_at", "id"),
        Index(None, "address"),
    )


class BounceReportRow(Base):
    """Every report the bounce receiver accepted — DSN, ARF or unreadable — kept with its raw bytes.

    ``bounce_type`` HARD / SOFT / COMPLAINT / NONE (a ``delayed`` or ``delivered`` notice); a report that
    matched no queue row, or could not be read, says why in ``unmatched_reason``. Soft bounces are counted
    from here (``NOTIFLOW_SOFT_BOUNCE_LIMIT`` within 7 days). ``engagement`` holds what the report means
    for the row's engagement (``BOUNCED`` / ``COMPLAINED``), written by ``activities/bounces/effects.py``.
    """

    __tablename__ = "bounce_reports"

    id: Mapped[uuid.UUID] = _uuid_pk()
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: DSN (RFC 3464), ARF (RFC 5965), UNKNOWN
    kind: Mapped[str] = mapped_column(String(16))
    envelope_from: Mapped[str | None] = mapped_column(String(500))
    envelope_to: Mapped[str | None] = mapped_column(String(500))
    raw_size: Mapped[int] = mapped_column(Integer)
    #: the first RAW_LIMIT bytes of the message, for an operator to look at
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    verp_code: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(500))
    queue_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("notification_queue.id", ondelete="SET NULL")
    )
    channel: Mapped[str] = mapped_column(String(20), server_default="EMAIL")
    address: Mapped[str | None] = mapped_column(String(500))
    #: failed / delayed / delivered / relayed / expanded (DSN), abuse / fraud / … (ARF)
    action: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(32))
    diagnostic: Mapped[str | None] = mapped_column(Text)
    #: HARD, SOFT, COMPLAINT, NONE
    bounce_type: Mapped[str] = mapped_column(String(16))
    unmatched_reason: Mapped[str | None] = mapped_column(Text)
    suppression_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("suppressions.id", ondelete="SET NULL")
    )
    engagement: Mapped[dict | None] = mapped_column(JSONB)

    __table_args__ = (
        Index(None, "received_at"),
        Index(None, "queue_id"),
        Index(None, "address", "bounce_type", "received_at"),
    )


#: What ``engagement_events.kind`` may hold (``notiflow.engagement.EngagementKind``).
ENGAGEMENT_KINDS = ("SEEN", "READ", "CLICKED", "ARCHIVED", "OPENED", "BOUNCED", "COMPLAINED", "UNSUBSCRIBED")


class EngagementEventRow(Base):
    """What a recipient did with a delivered notification: once per queue row and kind (the first time wins,
    a repeat raises ``count`` and ``last_at``). No personal data beyond the recipient id; ``detail`` is small
    (``{"link": "issue"}``, ``{"machine": true}``)."""

    __tablename__ = "engagement_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    queue_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("notification_queue.id", ondelete="CASCADE")
    )
    recipient_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    count: Mapped[int] = mapped_column(Integer, server_default="1")
    detail: Mapped[dict | None] = mapped_column(JSONB)

    __table_args__ = (
        UniqueConstraint("queue_id", "kind"),
        CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in ENGAGEMENT_KINDS) + ")", name="kind"),
        Index(None, "occurred_at"),
        Index(None, "kind", "channel"),
    )


class TrackedLinkRow(Base):
    """A wrapped link: ``GET /r/{code}`` answers 302 to ``target`` (stored at planning time, never taken from
    the request) and records CLICKED on ``queue_id``. ``link`` names it (``issue``; ``open`` is the pixel)."""

    __tablename__ = "tracked_links"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    queue_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("notification_queue.id", ondelete="CASCADE"), index=True
    )
    link: Mapped[str] = mapped_column(String(50))
    target: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()


class ExperimentRow(Base):
    """An A/B experiment on one (notification type, channel, locale): arms are template versions
    (``experiment_arms``), an optional holdout receives nothing. DRAFT → RUNNING → STOPPED / PROMOTED."""

    __tablename__ = "experiments"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(120))
    notification_type: Mapped[str] = mapped_column(String(50))
    channel: Mapped[str] = mapped_column(String(20))
    locale: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), server_default="DRAFT")
    goal: Mapped[str] = mapped_column(String(16))
    window_hours: Mapped[int] = mapped_column(Integer)
    min_sample_per_arm: Mapped[int] = mapped_column(Integer)
    holdout_weight: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = _created_at()
    created_by: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_by: Mapped[str | None] = mapped_column(String(64))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_by: Mapped[str | None] = mapped_column(String(64))
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    promoted_by: Mapped[str | None] = mapped_column(String(64))
    promoted_arm: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        CheckConstraint("state IN ('DRAFT', 'RUNNING', 'STOPPED', 'PROMOTED')", name="state"),
        CheckConstraint("goal IN ('READ', 'CLICKED')", name="goal"),
        Index(
            "uq_experiments_running_target",
            "notification_type",
            "channel",
            "locale",
            unique=True,
            postgresql_where=text("state = 'RUNNING'"),
        ),
    )


class ExperimentArmRow(Base):
    """One arm of an experiment: a template version and its weight (percent)."""

    __tablename__ = "experiment_arms"

    id: Mapped[uuid.UUID] = _uuid_pk()
    experiment_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("experiments.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(40))
    template_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("notification_templates.id"))
    weight: Mapped[int] = mapped_column(Integer)
    is_control: Mapped[bool] = mapped_column(Boolean, server_default="false")
    position: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("experiment_id", "name"),)


#: The kinds of push subscription: a browser (Web Push) or a phone app's device token.
PUSH_KINDS = ("WEB", "FCM", "APNS")


class PushSubscriptionRow(Base):
    """One device a person reaches by PUSH: a browser's Web Push subscription or a phone's token.

    ``endpoint`` is the push service URL (WEB) or the device token (FCM, APNS); ``p256dh`` and ``auth`` are the
    browser's keys (RFC 8291). A push service's 404/410 deletes the row.
    """

    __tablename__ = "push_subscriptions"

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8), server_default="WEB")
    endpoint: Mapped[str] = mapped_column(String(2000))
    p256dh: Mapped[str | None] = mapped_column(String(200))
    auth: Mapped[str | None] = mapped_column(String(100))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _created_at()
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in PUSH_KINDS) + ")", name="kind"),
        UniqueConstraint("user_id", "endpoint"),
        Index(None, "user_id", "created_at"),
    )


#: Whether the person has a push subscription (loaded with every UserRow: PUSH is their channel only then).
UserRow.has_push_subscription = column_property(  # type: ignore[attr-defined]
    exists().where(PushSubscriptionRow.user_id == UserRow.id).correlate_except(PushSubscriptionRow),
    deferred=False,
)
