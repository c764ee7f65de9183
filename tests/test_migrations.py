"""The models and the Alembic revisions describe the same schema."""

from __future__ import annotations

import asyncio

from alembic import command

from notiflow.db import alembic_config


async def test_models_match_the_migrations(database_url):
    # Raises alembic.util.CommandError listing the differences if a model changed without a revision.
    await asyncio.to_thread(command.check, alembic_config(database_url))
