"""The suppression list (admin): addresses notiflow does not send to, why, and since when.

Entries come from hard bounces, repeated soft bounces and complaints (``notiflow bounces``), from SMS
gateways and hook receivers that say the address does not exist (``INVALID``), and from admins
(``MANUAL``, here). ``DELETE …/{id}`` takes an entry off the list (kept, inactive: the address gets mail
again). Both changes are audited (``suppression.create`` / ``suppression.delete``). An entry is for an
address, not a person: someone whose address changes (``PUT /users/{id}``) is not held back by the old one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import select

from activities.bounces.queries import add_suppression, remove_suppression
from activities.bounces.suppression import MANUAL, REASONS, describe, normalise_address
from notiflow.audit import record_audit
from notiflow.contracts import normalise_phone
from notiflow.models import SuppressionRow
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import Session
from programs.api.errors import VALIDATION_ERRORS
from programs.api.pagination import PageParams, fetch_page
from programs.api.schemas import CursorPage, _Request

router = APIRouter(
    prefix="/api/v1/notifications/suppressions",
    tags=["suppressions"],
    responses={**ROLE_ERRORS, **VALIDATION_ERRORS},
)

ChannelName = Literal["EMAIL", "SMS", "IN_APP", "WEBHOOK", "SLACK", "TEAMS"]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no suppression with this id"}}


class SuppressionIn(_Request):
    channel: ChannelName
    address: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)] = Field(
        examples=["rakoto@example.mg"], description="an email, a phone (E.164 or national), or a subscription id"
    )
    scope: Literal["ALL", "NON_CRITICAL"] = Field(
        default="ALL", description="NON_CRITICAL: critical notifications still go to this address"
    )
    note: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None, description="why, for the next person who reads the list"
    )


class SuppressionOut(BaseModel):
    id: uuid.UUID
    channel: str
    address: str
    reason: str
    scope: str
    status_code: str | None
    status_text: str | None
    created_at: datetime
    created_by: str | None
    queue_id: uuid.UUID | None
    active: bool
    removed_at: datetime | None
    removed_by: str | None
    #: what a skipped queue row says, e.g. "suppressed: hard bounce 5.1.1 on 2026-12-01"
    description: str

    @classmethod
    def of(cls, row: SuppressionRow) -> SuppressionOut:
        return cls(
            id=row.id,
            channel=row.channel,
            address=row.address,
            reason=row.reason,
            scope=row.scope,
            status_code=row.status_code,
            status_text=row.status_text,
            created_at=row.created_at,
            created_by=row.created_by,
            queue_id=row.queue_id,
            active=row.active,
            removed_at=row.removed_at,
            removed_by=row.removed_by,
            description=describe(row),
        )


def _address(body: SuppressionIn) -> str:
    if body.channel == "EMAIL":
        local, at, domain = body.address.rpartition("@")
        if not at or not local or "." not in domain or any(c.isspace() for c in body.address):
            raise HTTPException(422, f"address {body.address!r} is not an email address")
    if body.channel == "SMS":
        try:
            return normalise_phone(body.address) or body.address
        except ValueError as exc:
            raise HTTPException(422, f"address: {exc}") from None
    return normalise_address(body.channel, body.address)


@router.get("", response_model=CursorPage[SuppressionOut], summary="The suppression list, newest first")
async def list_suppressions(
    _admin: Admin,
    session: Session,
    page: PageParams,
    channel: Annotated[ChannelName | None, Query()] = None,
    reason: Annotated[str | None, Query(description=f"one of {', '.join(REASONS)}")] = None,
    address: Annotated[str | None, Query(max_length=500, description="exact address (any case)")] = None,
    active: Annotated[bool | None, Query(description="true: on the list now; false: removed")] = None,
) -> CursorPage[SuppressionOut]:
    if reason is not None and reason not in REASONS:
        raise HTTPException(422, f"reason {reason!r} is not one of {', '.join(REASONS)}")
    query = select(SuppressionRow)
    if channel is not None:
        query = query.where(SuppressionRow.channel == channel)
    if reason is not None:
        query = query.where(SuppressionRow.reason == reason)
    if address is not None:
        forms = {address.strip(), normalise_address(channel or "EMAIL", address), normalise_address("SMS", address)}
        query = query.where(SuppressionRow.address.in_(forms))
    if active is not None:
        query = query.where(SuppressionRow.active.is_(active))
    rows, next_cursor = await fetch_page(session, query, SuppressionRow, page)
    return CursorPage[SuppressionOut](items=[SuppressionOut.of(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "",
    status_code=201,
    response_model=SuppressionOut,
    summary="Stop sending to an address (MANUAL)",
    responses={409: {"description": "the address is already on the list"}},
)
async def create_suppression(body: SuppressionIn, admin: Admin, session: Session) -> SuppressionOut:
    address = _address(body)
    row, created = await add_suppression(
        session,
        channel=body.channel,
        address=address,
        reason=MANUAL,
        scope=body.scope,
        status_text=body.note,
        created_by=admin.user_id,
    )
    if not created:
        raise HTTPException(
            409,
            f"{body.channel} {row.address} is already on the list ({describe(row)}, id {row.id}); "
            f"DELETE /api/v1/notifications/suppressions/{row.id} first to replace it",
        )
    await record_audit(
        session,
        actor=admin.user_id,
        action="suppression.create",
        target=str(row.id),
        details={"channel": row.channel, "address": row.address, "scope": row.scope, "note": body.note},
    )
    await session.commit()
    return SuppressionOut.of(row)


@router.delete(
    "/{suppression_id}",
    response_model=SuppressionOut,
    summary="Take an address off the list (it gets notifications again); the entry is kept, inactive",
    responses=NOT_FOUND,
)
async def delete_suppression(suppression_id: uuid.UUID, admin: Admin, session: Session) -> SuppressionOut:
    existing = await session.get(SuppressionRow, suppression_id)
    was_active = existing.active if existing is not None else False
    row = await remove_suppression(session, suppression_id, admin.user_id)
    if row is None:
        raise HTTPException(404, f"no suppression {suppression_id}; GET /api/v1/notifications/suppressions lists them")
    if was_active:
        await record_audit(
            session,
            actor=admin.user_id,
            action="suppression.delete",
            target=str(row.id),
            details={"channel": row.channel, "address": row.address, "reason": row.reason},
        )
    await session.commit()
    return SuppressionOut.of(row)
