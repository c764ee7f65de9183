"""Why (not)? For one issue and one person: every event, and per channel the decision notiflow took.

Read from what the pipeline already records: ``issue_events`` (what happened), ``notification_queue``
(one row per event × type × person × channel, with its status and the decision stored when it was taken:
held until, rate-capped, digested, skipped and why) and ``notification_logs`` (every attempt). Nothing is
re-derived from today's preferences or settings. A person with no row for an event was not in its
audience (or was its actor).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from activities.delivery.rows import UNRECORDED, RowDecision
from activities.delivery.rows import Outcome as Decided
from notiflow.contracts import DeliveryStatus
from notiflow.keys import event_workflow_id
from notiflow.models import (
    IssueEventRow,
    NotificationLogRow,
    NotificationQueueRow,
    UserRow,
)
from notiflow.settings import Settings
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import AppSettings, Session
from programs.api.engagement_queries import engagement_by_row
from programs.api.errors import VALIDATION_ERRORS
from programs.api.schemas import EngagementItem, workflow_ui_url

router = APIRouter(prefix="/api/v1/notifications", tags=["deliveries"], responses={**ROLE_ERRORS, **VALIDATION_ERRORS})

Outcome = Literal["sent", "skipped", "held", "digested", "rate-capped", "failed", "fell back", "pending"]
#: Rows read per question; an issue with more deliveries to one person than this is cut (``truncated``).
MAX_ROWS = 2000


class ChannelDecision(BaseModel):
    queue_id: uuid.UUID
    notification_type: str
    channel: str
    decision: Outcome
    reason: str | None = Field(description="why: the opt-out, the missing address, the error, the quiet hours' end…")
    recorded: RowDecision | None = Field(
        description="the decision as stored when it was taken; null for rows stored before decisions were"
    )
    status: str = Field(description="the queue row's status")
    at: datetime | None = Field(description="when it was sent (or decided)")
    attempts: int = Field(description="delivery attempts recorded")
    address: str | None
    workflow_id: str | None
    workflow_url: str | None
    engagement: list[EngagementItem] = Field(default_factory=list, description="what the person did with it")


class EventDecisions(BaseModel):
    event_id: str | None = Field(description="null for notifications not caused by one event (escalations, summaries)")
    event_type: str | None
    actor_id: str | None
    occurred_at: datetime | None
    workflow_id: str | None
    workflow_url: str | None
    note: str | None = Field(description="when nothing was decided for this person: why")
    decisions: list[ChannelDecision]


class WhyAnswer(BaseModel):
    issue_id: str
    user_id: str
    user_known: bool
    events: list[EventDecisions]
    truncated: bool


def _decision(row: NotificationQueueRow, logs: list[NotificationLogRow], settings: Settings) -> ChannelDecision:
    """The decision stored on the row when it was taken, with what happened since (its status, its attempts).

    Never re-derived from today's preferences, quiet hours or rate cap: a row planned before decisions were
    stored says only what its status and context tell.
    """
    recorded = RowDecision.read(row.decision)
    context = row.context_data or {}
    digest = recorded.digest if recorded else bool(context.get("digest"))
    reason, at = (recorded.reason if recorded else None), row.sent_at
    if row.status == DeliveryStatus.FAILED and context.get("fallback_to"):
        decision: Outcome = "fell back"
        target = context["fallback_to"]
        sent_instead = f"sent instead as {target.get('channel', '')} {target.get('queue_id', '')}".strip()
        reason = f"{row.error_message or 'failed'}; {sent_instead}"
    elif row.status == DeliveryStatus.FAILED:
        decision, reason = "failed", row.error_message or reason
    elif row.status == DeliveryStatus.CANCELLED:
        decision, reason = "skipped", reason or row.error_message
    elif digest:
        decision = "rate-capped" if recorded and recorded.outcome == Decided.RATE_CAPPED else "digested"
        reason = reason or f"{str(context['digest']).lower()} digest ({UNRECORDED}: chosen or over the cap)"
        reason += f"; {row.provider_response}" if row.status == DeliveryStatus.SENT else "; waiting"
    elif row.status == DeliveryStatus.SENT:
        decision = "sent"
        reason = "; ".join(r for r in (reason, f"by {row.provider}" if row.provider else None) if r) or None
    elif recorded and recorded.outcome == Decided.HELD and not logs:
        decision, at = "held", recorded.held_until
    else:
        decision = "pending"
        why = UNRECORDED if recorded is None else None if recorded.outcome == Decided.SEND else reason
        reason = "; ".join(r for r in ("queued, not sent yet", why) if r)
    if context.get("fallback_of") and not (recorded and recorded.fallback_of):
        reason = f"{reason + '; ' if reason else ''}fallback of {context['fallback_of']}"
    return ChannelDecision(
        queue_id=row.id,
        notification_type=row.notification_type,
        channel=row.delivery_method,
        decision=decision,
        reason=reason,
        recorded=recorded,
        status=row.status,
        at=at or (row.created_at if decision in ("skipped", "failed") else None),
        attempts=max((log.attempt for log in logs), default=0),
        address=row.address,
        workflow_id=row.workflow_id,
        workflow_url=workflow_ui_url(settings, row.workflow_id) if row.workflow_id else None,
    )


@router.get(
    "/why",
    response_model=WhyAnswer,
    summary="Why did this person (not) hear about this issue? Every event and each channel's decision",
)
async def why(
    _admin: Admin,
    session: Session,
    settings: AppSettings,
    issue_id: Annotated[str, Query(min_length=1, max_length=64, examples=["ISS-42"])],
    user_id: Annotated[str, Query(min_length=1, max_length=64, examples=["u-agent"])],
) -> WhyAnswer:
    q = NotificationQueueRow
    user = await session.get(UserRow, user_id)
    events = (
        await session.scalars(
            select(IssueEventRow)
            .where(IssueEventRow.issue_id == issue_id)
            .order_by(IssueEventRow.occurred_at, IssueEventRow.received_at)
            .limit(MAX_ROWS)
        )
    ).all()
    rows = (
        await session.scalars(
            select(q)
            .where(q.issue_id == issue_id, q.recipient_id == user_id)
            .order_by(q.created_at, q.id)
            .limit(MAX_ROWS + 1)
        )
    ).all()
    truncated = len(rows) > MAX_ROWS
    rows = rows[:MAX_ROWS]
    logs: dict[uuid.UUID, list[NotificationLogRow]] = defaultdict(list)
    if rows:
        for log in await session.scalars(
            select(NotificationLogRow).where(NotificationLogRow.queue_id.in_([r.id for r in rows]))
        ):
            if log.queue_id is not None:
                logs[log.queue_id].append(log)
    by_event: dict[str | None, list[ChannelDecision]] = defaultdict(list)
    others: dict[str, list[ChannelDecision]] = defaultdict(list)
    known_events = {event.event_id for event in events}
    engagement = await engagement_by_row(session, [r.id for r in rows])
    for row in rows:
        decided = _decision(row, logs[row.id], settings)
        decided.engagement = [EngagementItem.model_validate(e) for e in engagement.get(row.id, [])]
        if row.event_id in known_events:
            by_event[row.event_id].append(decided)
        else:
            others[row.workflow_id or row.event_id or "unknown"].append(decided)

    answer: list[EventDecisions] = []
    for event in events:
        decisions = by_event.get(event.event_id, [])
        workflow_id = event.workflow_id or event_workflow_id(event.event_id)
        note = None
        if not decisions:
            note = (
                "this person caused the event (the actor is never notified)"
                if event.actor_id == user_id
                else "not in this event's audience: nothing was planned for this person"
            )
        answer.append(
            EventDecisions(
                event_id=event.event_id,
                event_type=event.type,
                actor_id=event.actor_id,
                occurred_at=event.occurred_at,
                workflow_id=workflow_id,
                workflow_url=workflow_ui_url(settings, workflow_id),
                note=note,
                decisions=decisions,
            )
        )
    for decisions in others.values():
        first = decisions[0]
        answer.append(
            EventDecisions(
                event_id=None,
                event_type=first.notification_type,
                actor_id=None,
                occurred_at=None,
                workflow_id=first.workflow_id,
                workflow_url=first.workflow_url,
                note=None,
                decisions=decisions,
            )
        )
    return WhyAnswer(
        issue_id=issue_id, user_id=user_id, user_known=user is not None, events=answer, truncated=truncated
    )
