"""Idempotent seed steps: default templates (run by `notiflow migrate`) and demo users (`notiflow dev`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notiflow.contracts import User
from notiflow.directory import upsert_users
from notiflow.models import NotificationTemplateRow
from notiflow.templating import load_default_templates

DEMO_USERS = [
    User(id="u-admin", name="Hery Rasoa", email="hery.admin@example.mg", locale="fr", roles=["admin"],
         is_on_call=True, timezone="Indian/Antananarivo"),
    User(id="u-lead", name="Miora Rabe", email="miora.lead@example.mg", locale="en", roles=["admin"]),
    User(id="u-agent", name="Rakoto Andry", email="rakoto@example.mg", locale="fr", roles=["staff"]),
    User(id="u-clerk", name="Lalao Rina", email="lalao@example.mg", locale="en", roles=["staff"]),
]


async def seed_templates(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Insert each default template that has no version yet; edited templates are left alone."""
    defaults = load_default_templates()
    async with sessions.begin() as session:
        present = set((await session.execute(select(NotificationTemplateRow.name))).scalars())
        missing = [t for t in defaults if t.name not in present]
        if missing:
            await session.execute(insert(NotificationTemplateRow).values([
                {
                    "name": t.name,
                    "display_name": f"{t.notification_type.replace('_', ' ').title()} ({t.channel}, {t.locale})",
                    "description": "default template shipped with notiflow",
                    "template_type": t.channel,
                    "notification_type": t.notification_type,
                    "locale": t.locale,
                    "subject_template": t.subject_template,
                    "body_template": t.body_template,
                    "html_template": t.html_template,
                    "version": 1,
                    "created_by": "notiflow",
                }
                for t in missing
            ]).on_conflict_do_nothing())
    return len(missing)


async def seed_demo_users(sessions: async_sessionmaker[AsyncSession]) -> list[User]:
    async with sessions.begin() as session:
        await upsert_users(session, DEMO_USERS)
    return DEMO_USERS
