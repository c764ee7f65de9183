"""One queue row, built one way: its dedupe key, its column values, its attempt-log entries, its decision.

Planning (``planning.queue_rows``), subscriptions (``planning.subscription_rows``), critical fallback
(``fallback.plan_fallbacks``), redelivery and digests all build the rows they insert as a ``QueueRow`` and
their ``notification_logs`` entries with ``log_entry``, so the dedupe key and the log's shape exist once.

Each row carries the decision taken for it (``notification_queue.decision``), stored when it is taken:
what was decided (``outcome``), a sentence a person reads (``reason``), quiet hours' end (``held_until``),
the digest it went to (``frequency``), the fallback it is or was replaced by, who re-queued it. Why (not)?,
analytics and the queue API read it as it was recorded, never re-deriving it from today's preferences or
settings. Later decisions keep the earlier one under ``previous``. The record is open: a later feature adds
its own keys (``escalated``, ``suppressed``, ``experiment``) without a migration.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import cast, func
from sqlalchemy.dialects.postgresql import JSONB

from notiflow.contracts import Channel, DeliveryStatus, Frequency
from workflows.delivery.rules import Preference, RecipientDecision
from workflows.delivery.types import Delivery

#: What readers say of a row stored before decisions were (migration 0007).
UNRECORDED = "recorded before decisions were stored"
#: Where counts by outcome put those rows.
UNRECORDED_OUTCOME = "UNRECORDED"


class Outcome(StrEnum):
    """What was decided for a row when it was planned (or later: fell back, re-queued)."""

    SEND = "SEND"
    SKIPPED = "SKIPPED"
    HELD = "HELD"
    RATE_CAPPED = "RATE_CAPPED"
    DIGESTED = "DIGESTED"
    FELL_BACK = "FELL_BACK"
    FAILED = "FAILED"
    REQUEUED = "REQUEUED"


class RowDecision(BaseModel):
    """The decision stored on a queue row (``notification_queue.decision``); other keys are kept as they are."""

    model_config = ConfigDict(extra="allow")

    outcome: Outcome
    reason: str = Field(description="why, as a person reads it")
    at: datetime | None = Field(default=None, description="when it was decided")
    held_until: datetime | None = Field(default=None, description="quiet hours: not sent before this instant")
    frequency: Frequency | None = Field(default=None, description="the digest it went to (HOURLY / DAILY)")
    fallback_of: str | None = Field(default=None, description="the FAILED critical row this one replaces")
    fallback_to: dict[str, str] | None = Field(default=None, description="the row sent instead: channel, queue_id")
    requeued_by: str | None = Field(default=None, description="who asked for the redelivery")
    redelivery: str | None = Field(default=None, description="the redelivery request that re-queued it")
    previous: dict[str, Any] | None = Field(default=None, description="the decision this one replaced")

    def stored(self) -> dict[str, Any]:
        """The JSON stored: outcome, reason, at, held_until and frequency always; other keys when set."""
        always = {"outcome", "reason", "at", "held_until", "frequency"}
        return {k: v for k, v in self.model_dump(mode="json").items() if k in always or v is not None}

    @classmethod
    def read(cls, stored: dict[str, Any] | None) -> RowDecision | None:
        """The decision stored on a row; None for a row planned before decisions were stored."""
        return cls.model_validate(stored) if stored else None

    @property
    def digest(self) -> bool:
        return self.outcome in (Outcome.DIGESTED, Outcome.RATE_CAPPED)


def superseding(current: Any, decision: RowDecision) -> Any:
    """SQL: ``decision`` stored in place of the column ``current``, which it keeps as ``previous``."""
    return cast(decision.stored(), JSONB).op("||")(func.jsonb_build_object("previous", current))


def recorded_decision(
    decision: RecipientDecision,
    preference: Preference | None,
    *,
    critical: bool,
    forced: bool,
    max_per_hour: int,
    now: datetime,
) -> RowDecision:
    """The record of what ``decide_for_recipient`` decided (its inputs: the preference it was given)."""
    if decision.status == DeliveryStatus.CANCELLED:
        return RowDecision(outcome=Outcome.SKIPPED, reason=decision.reason or "skipped", at=now)
    if decision.status == DeliveryStatus.FAILED:
        return cannot_send(decision.reason or "cannot be sent", now)
    held = {"held_until": decision.not_before, "frequency": decision.frequency, "at": now}
    quiet = f"; not before {decision.not_before.isoformat()} (quiet hours)" if decision.not_before else ""
    if decision.frequency != Frequency.IMMEDIATE:
        chosen = Frequency.IMMEDIATE if forced else (preference or Preference()).frequency
        if decision.frequency != chosen:  # the rules moved an immediate notification: the hourly cap
            return RowDecision(
                outcome=Outcome.RATE_CAPPED,
                reason=f"over {max_per_hour} per hour: moved to the {decision.frequency.lower()} digest{quiet}",
                max_per_hour=max_per_hour,
                **held,
            )
        return RowDecision(
            outcome=Outcome.DIGESTED, reason=f"{decision.frequency.lower()} digest chosen by the person{quiet}", **held
        )
    if decision.not_before is not None:
        return RowDecision(outcome=Outcome.HELD, reason=f"quiet hours until {decision.not_before.isoformat()}", **held)
    if forced:
        reason = "test send: preferences ignored"
    elif critical:
        reason = "critical: sent at once, whatever the preferences, quiet hours and digests"
    else:
        reason = "sent at once: the person's preferences let it through"
    return RowDecision(outcome=Outcome.SEND, reason=reason, **held)


def cannot_send(reason: str, now: datetime) -> RowDecision:
    """Planned but it cannot be sent (no template, the template failed to render)."""
    return RowDecision(outcome=Outcome.FAILED, reason=reason, at=now)


def dedupe_key(source_id: str, recipient: str, channel: Channel | str, notification_type: str | None = None) -> str:
    """The row's idempotency key: one row per (source, type, recipient, channel).

    A subscription (``recipient`` = ``subscription:<id>``) gets one row per source whatever the type, so
    its key has no type.
    """
    parts = [source_id, *([str(notification_type)] if notification_type is not None else []), recipient, channel]
    return "|".join(str(p) for p in parts)


@dataclass
class QueueRow:
    """A notification_queue row to insert, with what its Delivery needs (quiet hours' end, digest)."""

    source_id: str
    notification_type: str
    delivery_method: str
    recipient_id: str | None
    address: str | None
    template_name: str
    decision: RowDecision
    context_data: dict[str, Any]
    max_retries: int
    scheduled_at: datetime
    workflow_id: str | None = None
    event_id: str | None = None
    issue_id: str | None = None
    subject: str | None = None
    content: str = ""
    html_content: str | None = None
    status: str = str(DeliveryStatus.PENDING)
    error_message: str | None = None
    #: who the key names: the recipient, or ``subscription:<id>`` (see ``dedupe_key``)
    recipient_key: str | None = None
    #: the experiment arm it was planned in (``notification_queue.variant``)
    variant: str | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def dedupe_key(self) -> str:
        if self.recipient_key is not None:
            return dedupe_key(self.source_id, self.recipient_key, self.delivery_method)
        return dedupe_key(self.source_id, self.recipient_id or "", self.delivery_method, self.notification_type)

    def values(self) -> dict[str, Any]:
        """Its column values, for ``insert``."""
        return {
            "id": self.id,
            "dedupe_key": self.dedupe_key,
            "recipient_id": self.recipient_id,
            "delivery_method": self.delivery_method,
            "notification_type": self.notification_type,
            "event_id": self.event_id,
            "issue_id": self.issue_id,
            "workflow_id": self.workflow_id,
            "max_retries": self.max_retries,
            "scheduled_at": self.scheduled_at,
            "template_name": self.template_name,
            "subject": self.subject,
            "content": self.content,
            "html_content": self.html_content,
            "status": self.status,
            "error_message": self.error_message,
            "address": self.address,
            "context_data": {"source_id": self.source_id} | self.context_data,
            "decision": self.decision.stored(),
            "variant": self.variant,
        }

    def delivery(self, queue_id: uuid.UUID) -> Delivery:
        """The Delivery of the stored row (``queue_id``: this row's, or the one that was there already)."""
        return Delivery(
            queue_id=str(queue_id),
            channel=Channel(self.delivery_method),
            not_before=self.decision.held_until,
            frequency=self.decision.frequency or Frequency.IMMEDIATE,
        )


class LoggedRow(Protocol):
    """What a notification_logs entry copies from its row (a stored row, a ``QueueRow``, a RETURNING row)."""

    @property
    def recipient_id(self) -> str | None: ...
    @property
    def notification_type(self) -> str: ...
    @property
    def delivery_method(self) -> str: ...
    @property
    def workflow_id(self) -> str | None: ...


def log_entry(
    queue_id: uuid.UUID,
    row: LoggedRow,
    status: str,
    *,
    attempt: int = 0,
    sent_at: datetime | None = None,
    error: str | None = None,
    **context: Any,
) -> dict[str, Any]:
    """One notification_logs row (values for ``queries.write_logs``): an attempt, or a FALLBACK / REQUEUED note."""
    return {
        "queue_id": queue_id,
        "user_id": row.recipient_id,
        "notification_type": row.notification_type,
        "delivery_method": row.delivery_method,
        "status": str(status),
        "attempt": attempt,
        "sent_at": sent_at,
        "error_details": error,
        "context": {"workflow_id": row.workflow_id, **context},
    }
