"""Directory sync from the issue system (service role): who exists, their roles and how to reach them."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from notiflow.contracts import User
from notiflow.directory import upsert_users
from notiflow.models import UserRow
from programs.api.auth import ROLE_ERRORS, Service
from programs.api.deps import Session
from programs.api.errors import VALIDATION_ERRORS

router = APIRouter(prefix="/api/v1/users", tags=["issue system"], responses={**ROLE_ERRORS, **VALIDATION_ERRORS})


def _clock(value) -> str | None:
    return value.strftime("%H:%M") if value else None


def _as_user(row: UserRow) -> User:
    return User(
        id=row.id,
        name=row.name,
        email=row.email,
        phone=row.phone,
        locale=row.locale,
        roles=list(row.roles),
        is_on_call=row.is_on_call,
        timezone=row.timezone,
        quiet_hours_start=_clock(row.quiet_hours_start),
        quiet_hours_end=_clock(row.quiet_hours_end),
        is_active=row.is_active,
    )


@router.put(
    "/{user_id}",
    response_model=User,
    summary="Create or update a directory entry",
    description="Returns the entry as stored: locale, time zone and quiet hours left out of the body "
    "keep the values the person chose.",
)
async def put_user(user_id: str, user: User, _service: Service, session: Session) -> User:
    if user.id != user_id:
        raise HTTPException(422, f"the body's id {user.id!r} differs from the URL's {user_id!r}; they must match")
    await upsert_users(session, [user])
    await session.commit()
    stored = await session.get(UserRow, user_id, populate_existing=True)
    assert stored is not None  # written just above
    return _as_user(stored)
