"""The user directory mirror: how directory entries from the issue system are stored.

Shared by the HTTP API (``PUT /api/v1/users/{id}``) and the worker's
``sync_users`` activity, so both upsert people the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time

from sqlalchemy import Boolean, String, Time, bindparam, func
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.contracts import User
from notiflow.models import UserRow, table

_USERS = table(UserRow)
DEFAULT_LOCALE = "en"


def _clock(value: str | None) -> time | None:
    return time.fromisoformat(value) if value else None


def _upsert_statement():
    """One INSERT … ON CONFLICT run once per user (executemany).

    Name, contact details, roles, on-call and active flags follow the issue
    system. Locale, time zone and quiet hours are only replaced when the entry
    states them, so what a person chose with ``PUT /preferences`` survives a
    sync that leaves them out.
    """
    locale = bindparam("locale", type_=String)
    tz = bindparam("timezone", type_=String)
    quiet_start = bindparam("quiet_hours_start", type_=Time)
    quiet_end = bindparam("quiet_hours_end", type_=Time)
    statement = insert(_USERS).values(
        id=bindparam("id", type_=String),
        name=bindparam("name", type_=String),
        email=bindparam("email", type_=String),
        phone=bindparam("phone", type_=String),
        locale=func.coalesce(locale, DEFAULT_LOCALE),
        timezone=tz,
        roles=bindparam("roles", type_=ARRAY(String)),
        is_on_call=bindparam("is_on_call", type_=Boolean),
        is_active=bindparam("is_active", type_=Boolean),
        quiet_hours_start=quiet_start,
        quiet_hours_end=quiet_end,
    )
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_USERS.c.id],
        set_={
            "name": excluded.name,
            "email": excluded.email,
            "phone": excluded.phone,
            "roles": excluded.roles,
            "is_on_call": excluded.is_on_call,
            "is_active": excluded.is_active,
            "locale": func.coalesce(locale, _USERS.c.locale),
            "timezone": func.coalesce(tz, _USERS.c.timezone),
            "quiet_hours_start": func.coalesce(quiet_start, _USERS.c.quiet_hours_start),
            "quiet_hours_end": func.coalesce(quiet_end, _USERS.c.quiet_hours_end),
            "updated_at": func.now(),
        },
    )


async def upsert_users(session: AsyncSession, users: Sequence[User]) -> int:
    """Insert or update directory entries; returns how many were written. The caller commits."""
    if not users:
        return 0
    await session.execute(
        _upsert_statement(),
        [
            {
                "id": user.id,
                "name": user.name,
                "email": str(user.email) if user.email else None,
                "phone": user.phone,
                "locale": user.locale,
                "timezone": user.timezone,
                "roles": list(user.roles),
                "is_on_call": user.is_on_call,
                "is_active": user.is_active,
                "quiet_hours_start": _clock(user.quiet_hours_start),
                "quiet_hours_end": _clock(user.quiet_hours_end),
            }
            for user in users
        ],
    )
    return len(users)
