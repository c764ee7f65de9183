"""FastAPI dependencies shared by the routers: state, database session, Temporal, directory lookups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.client import NotificationClient
from notiflow.models import UserRow
from notiflow.settings import Settings
from programs.api.state import ApiState


# Every dependency is a coroutine, even those that only read an attribute: FastAPI runs a plain ``def`` on a worker
# thread for every request, a hop that was 6 % of an inbox page's time and a source of its tail
# (tests/api/test_dependencies.py checks every route's dependencies).
async def api_state(request: Request) -> ApiState:
    return request.app.state.api


async def app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def db_session(state: Annotated[ApiState, Depends(api_state)]) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


async def notification_client(state: ApiState) -> NotificationClient:
    """Called by a route once its own checks passed, so a bad request gets its 4xx even while Temporal is down."""
    return NotificationClient(await state.temporal.client(), state.settings)


State = Annotated[ApiState, Depends(api_state)]
AppSettings = Annotated[Settings, Depends(app_settings)]
Session = Annotated[AsyncSession, Depends(db_session)]


async def directory_user(session: AsyncSession, user_id: str) -> UserRow:
    """The directory entry, or a 404 that says how people get into the directory."""
    user = await session.get(UserRow, user_id)
    if user is None:
        raise HTTPException(
            404,
            f"user {user_id} is not in the directory; the issue system syncs users with PUT /api/v1/users/{{id}}",
        )
    return user
