"""Escalation policies (admin): per priority, how long an issue may stay open and who hears after that.

One row per priority (seeded by the first migration): ``due_minutes`` from the issue's
creation (or reopening), then ``tiers`` counted from the due time (all admins, on-call
admins), the last tier repeating ``repeat_last`` times every ``repeat_every_minutes``.

The worker re-reads the table within 5 s (its snapshot in ``activities/sla``); a policy
is copied into an issue's SLA when that SLA is armed, so an edit applies to issues whose
SLA is armed or re-armed afterwards (new issues, priority changes, reopenings), not to
timers already running. Every answer shows the next firings of a sample issue created
now. Each change is in the audit trail (``policy.update``, before and after) in the same
transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.audit import record_audit
from notiflow.contracts import Priority
from notiflow.models import EscalationPolicyRow
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import Session
from programs.api.errors import VALIDATION_ERRORS
from programs.api.schemas import _Request
from workflows.sla.rules import escalation_schedule
from workflows.sla.types import EscalationPolicy, EscalationTier

router = APIRouter(
    prefix="/api/v1/notifications/escalation-policies",
    tags=["escalation policies"],
    responses={**ROLE_ERRORS, **VALIDATION_ERRORS},
)

MAX_TIERS = 10
#: Repeats of the last tier at most (each one is a notice to admins or on-call).
MAX_REPEATS = 100
#: A year: a due time or a delay beyond it is a typo.
MAX_MINUTES = 366 * 24 * 60
_ORDER: dict[str, int] = {str(priority): index for index, priority in enumerate(Priority)}


class TierIn(_Request):
    after_minutes: int = Field(gt=0, le=MAX_MINUTES, description="minutes after the due time", examples=[120])
    audience: Literal["admins", "on_call"]


class PolicyIn(_Request):
    due_minutes: int = Field(gt=0, le=MAX_MINUTES, description="minutes after creation (or reopening)")
    tiers: list[TierIn] = Field(default_factory=list, max_length=MAX_TIERS, description="ascending after_minutes")
    repeat_last: int = Field(default=0, ge=0, le=MAX_REPEATS, description="times the last tier repeats")
    repeat_every_minutes: int = Field(default=240, gt=0, le=MAX_MINUTES)


class FiringOut(BaseModel):
    at: datetime
    #: 0: the assignee at the due time; 1…: the policy's tiers
    tier: int
    #: 0: the tier's first notice; n: its n-th repeat
    repeat: int
    audience: Literal["assignee", "admins", "on_call"]


class SampleIssue(BaseModel):
    """What the policy would do to an issue of this priority created now (and never resolved)."""

    created_at: datetime
    due_at: datetime
    firings: list[FiringOut]


class PolicyOut(BaseModel):
    priority: Priority
    due_minutes: int
    tiers: list[EscalationTier]
    repeat_last: int
    repeat_every_minutes: int
    updated_at: datetime
    sample: SampleIssue

    @classmethod
    def of(cls, row: EscalationPolicyRow, now: datetime) -> PolicyOut:
        policy = _policy(row)
        due_at = now + timedelta(minutes=policy.due_minutes)
        firings = escalation_schedule(due_at, policy)
        return cls(
            priority=policy.priority,
            due_minutes=policy.due_minutes,
            tiers=policy.tiers,
            repeat_last=policy.repeat_last,
            repeat_every_minutes=policy.repeat_every_minutes,
            updated_at=row.updated_at,
            sample=SampleIssue(
                created_at=now, due_at=due_at, firings=[FiringOut(**firing.model_dump()) for firing in firings]
            ),
        )


def _policy(row: EscalationPolicyRow) -> EscalationPolicy:
    """As the worker reads it (``activities.sla.activities._load_policies``)."""
    return EscalationPolicy(
        priority=row.priority,
        due_minutes=row.due_minutes,
        tiers=row.tiers,
        repeat_last=row.repeat_last,
        repeat_every_minutes=row.repeat_every_minutes,
    )


def _values(row: EscalationPolicyRow | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "due_minutes": row.due_minutes,
        "tiers": row.tiers,
        "repeat_last": row.repeat_last,
        "repeat_every_minutes": row.repeat_every_minutes,
    }


def _check_ascending(body: PolicyIn) -> None:
    """Tiers in strictly ascending ``after_minutes``; the error names the first tier out of order."""
    for index in range(1, len(body.tiers)):
        before, tier = body.tiers[index - 1], body.tiers[index]
        if tier.after_minutes <= before.after_minutes:
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "tiers", index, "after_minutes"),
                        "msg": f"tiers must be in ascending order: {tier.after_minutes} minutes is not after "
                        f"the previous tier's {before.after_minutes}",
                        "type": "value_error",
                    }
                ]
            )


async def _row(session: AsyncSession, priority: Priority) -> EscalationPolicyRow | None:
    return await session.scalar(select(EscalationPolicyRow).where(EscalationPolicyRow.priority == priority))


@router.get(
    "",
    response_model=list[PolicyOut],
    summary="Escalation policies, most urgent priority first, each with a sample issue's next firings",
)
async def list_policies(_admin: Admin, session: Session) -> list[PolicyOut]:
    rows = list(await session.scalars(select(EscalationPolicyRow)))
    rows.sort(key=lambda row: _ORDER.get(row.priority, len(_ORDER)))
    now = datetime.now(timezone.utc)
    return [PolicyOut.of(row, now) for row in rows]


@router.put(
    "/{priority}",
    response_model=PolicyOut,
    summary="Replace a priority's policy (applies to SLAs armed from now on)",
    description="The worker reads the change within 5 s; issues whose SLA is armed or re-armed afterwards "
    "(created, priority changed, reopened) follow it; timers already running keep the policy they started with.",
)
async def update_policy(priority: Priority, body: PolicyIn, admin: Admin, session: Session) -> PolicyOut:
    _check_ascending(body)
    before = _values(await _row(session, priority))
    after = {
        "due_minutes": body.due_minutes,
        "tiers": [tier.model_dump() for tier in body.tiers],
        "repeat_last": body.repeat_last,
        "repeat_every_minutes": body.repeat_every_minutes,
    }
    statement = insert(EscalationPolicyRow).values(priority=str(priority), **after)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[EscalationPolicyRow.priority], set_={**after, "updated_at": func.now()}
        )
    )
    await record_audit(
        session,
        actor=admin.user_id,
        action="policy.update",
        target=str(priority),
        details={"before": before, "after": after},
    )
    await session.commit()
    row = await _row(session, priority)
    assert row is not None
    await session.refresh(row)
    return PolicyOut.of(row, datetime.now(timezone.utc))
