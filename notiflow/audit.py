"""The audit trail: every admin action and redelivery, with who asked and what changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.models import AuditLogRow


async def record_audit(
    session: AsyncSession, *, actor: str, action: str, target: str | None = None, details: dict[str, Any] | None = None
) -> None:
    """Add one audit row in the caller's transaction, so the action and its record commit together."""
    await session.execute(insert(AuditLogRow).values(actor=actor, action=action, target=target, details=details))
