"""The directory feature's activity: the issue system's people, upserted (SyncUsersWorkflow)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.implements import implements
from notiflow.contracts import User
from notiflow.directory import upsert_users
from workflows.directory import interface


class DirectoryActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self.sessions = sessions

    @implements(interface.sync_users)
    async def sync_users(self, users: list[User]) -> int:
        async with self.sessions.begin() as session:
            await upsert_users(session, users)
        return len(users)

    def activities(self) -> list:
        return [self.sync_users]
