"""Escalation on unread (admin): per notification type, "if not read within N minutes, also send on CHANNEL".

One row per type (seeded by migration 0010): critical types ship on (unread 10 min → SMS), the others
off. A rule is read when a notification is planned, so an edit applies to notifications planned from
then on; a deadline already running keeps the rule it started with. Each change is audited
(``read_escalation.update``, before and after) in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.audit import record_audit
from notiflow.contracts import Channel, NotificationType
from notiflow.models import ReadEscalationRow
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import Session
from programs.api.errors import VALIDATION_ERRORS
from programs.api.schemas import _Request

router = APIRouter(
    prefix="/api/v1/notifications/read-escalations",
    tags=["escalation on unread"],
    responses={**ROLE_ERRORS, **VALIDATION_ERRORS},
)

#: A week: a read deadline beyond it is not an escalation any more.
MAX_MINUTES = 7 * 24 * 60


class ReadEscalationIn(_Request):
    enabled: bool
    after_minutes: int = Field(gt=0, le=MAX_MINUTES, description="minutes after delivery", examples=[60])
    channel: Channel = Field(description="the person's channel it also goes out on", examples=["EMAIL"])


class ReadEscalationOut(BaseModel):
    notification_type: NotificationType
    enabled: bool
    after_minutes: int
    channel: Channel
    updated_at: datetime
    updated_by: str | None

    @classmethod
    def of(cls, row: ReadEscalationRow) -> ReadEscalationOut:
        return cls(
            notification_type=NotificationType(row.notification_type),
            enabled=row.enabled,
            after_minutes=row.after_minutes,
            channel=Channel(row.channel),
            updated_at=row.updated_at,
            updated_by=row.updated_by,
        )


def _values(row: ReadEscalationRow | None) -> dict[str, Any] | None:
    return None if row is None else {"enabled": row.enabled, "after_minutes": row.after_minutes, "channel": row.channel}


async def _row(session: AsyncSession, notification_type: NotificationType) -> ReadEscalationRow | None:
    return await session.scalar(
        select(ReadEscalationRow).where(ReadEscalationRow.notification_type == str(notification_type))
    )


@router.get("", response_model=list[ReadEscalationOut], summary="Every type's escalation-on-unread rule")
async def list_read_escalations(_admin: Admin, session: Session) -> list[ReadEscalationOut]:
    order = {str(t): i for i, t in enumerate(NotificationType)}
    rows = sorted(await session.scalars(select(ReadEscalationRow)), key=lambda r: order.get(r.notification_type, 99))
    return [ReadEscalationOut.of(row) for row in rows]


@router.get("/{notification_type}", response_model=ReadEscalationOut, summary="One type's rule")
async def get_read_escalation(
    notification_type: NotificationType, _admin: Admin, session: Session
) -> ReadEscalationOut:
    row = await _row(session, notification_type)
    if row is None:
        raise HTTPException(404, f"no escalation-on-unread rule for {notification_type}: run `notiflow migrate`")
    return ReadEscalationOut.of(row)


@router.put(
    "/{notification_type}",
    response_model=ReadEscalationOut,
    summary="Replace a type's rule (applies to notifications planned from now on)",
)
async def update_read_escalation(
    notification_type: NotificationType, body: ReadEscalationIn, admin: Admin, session: Session
) -> ReadEscalationOut:
    before = _values(await _row(session, notification_type))
    after = {"enabled": body.enabled, "after_minutes": body.after_minutes, "channel": str(body.channel)}
    statement = insert(ReadEscalationRow).values(
        notification_type=str(notification_type), updated_by=admin.user_id, **after
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ReadEscalationRow.notification_type],
            set_={**after, "updated_by": admin.user_id, "updated_at": func.now()},
        )
    )
    await record_audit(
        session,
        actor=admin.user_id,
        action="read_escalation.update",
        target=str(notification_type),
        details={"before": before, "after": after},
    )
    await session.commit()
    row = await _row(session, notification_type)
    assert row is not None
    await session.refresh(row)
    return ReadEscalationOut.of(row)
