"""The audit trail for admins: who did what to notiflow's configuration and deliveries, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from notiflow.models import AuditLogRow
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import Session
from programs.api.errors import VALIDATION_ERRORS
from programs.api.pagination import PageParams, fetch_page
from programs.api.schemas import AuditEntry, CursorPage, Instant

router = APIRouter(prefix="/api/v1/notifications", tags=["audit"], responses={**ROLE_ERRORS, **VALIDATION_ERRORS})

Audit = AuditLogRow


@router.get("/audit", response_model=CursorPage[AuditEntry], summary="Admin actions, newest first")
async def list_audit(
    _admin: Admin,
    session: Session,
    page: PageParams,
    action: Annotated[str | None, Query(max_length=100, description="e.g. send_test")] = None,
    actor: Annotated[str | None, Query(max_length=200, description="the user id that acted")] = None,
    at_from: Annotated[Instant | None, Query(description="inclusive, e.g. 2026-11-25T00:00:00Z")] = None,
    at_to: Annotated[Instant | None, Query(description="exclusive")] = None,
) -> CursorPage[AuditEntry]:
    query = select(Audit)
    if action is not None:
        query = query.where(Audit.action == action)
    if actor is not None:
        query = query.where(Audit.actor == actor)
    if at_from:
        query = query.where(Audit.at >= at_from)
    if at_to:
        query = query.where(Audit.at < at_to)
    rows, next_cursor = await fetch_page(session, query, Audit, page, time_column="at")
    return CursorPage[AuditEntry](items=[AuditEntry.model_validate(row) for row in rows], next_cursor=next_cursor)
