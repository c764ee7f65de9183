"""The demo users `notiflow dev` and `notiflow demo` put in the directory (idempotent)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notiflow.contracts import User
from notiflow.directory import upsert_users

DEMO_USERS = [
    User(id="u-admin", name="Hery Rasoa", email="hery.admin@example.mg", locale="fr", roles=["admin"],
         is_on_call=True, timezone="Indian/Antananarivo"),
    User(id="u-lead", name="Miora Rabe", email="miora.lead@example.mg", locale="en", roles=["admin"]),
    User(id="u-agent", name="Rakoto Andry", email="rakoto@example.mg", locale="fr", roles=["staff"]),
    User(id="u-clerk", name="Lalao Rina", email="lalao@example.mg", locale="en", roles=["staff"]),
]


async def seed_demo_users(sessions: async_sessionmaker[AsyncSession]) -> list[User]:
    async with sessions.begin() as session:
        await upsert_users(session, DEMO_USERS)
    return DEMO_USERS
