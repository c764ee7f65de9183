"""Fixtures for the HTTP API: the app over ASGI (most tests) or under a real uvicorn server.

The database is the session's real PostgreSQL (``db`` empties it per test).
In ``api`` nothing listens on Temporal's port, which also exercises the 503
path; ``temporal_api`` and ``live_api`` use the real Temporal dev server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from temporalio.client import Client

from notiflow.models import EscalationPolicyRow
from notiflow.settings import Settings
from programs.api.app import create_app
from programs.dev.ports import free_port
from tests.api.helpers import JWT_SECRET, UI_URL, LiveServer, asgi_client, temporal_address


@pytest.fixture
def api_settings(database_url: str, task_queue: str) -> Settings:
    """Rate limits far above what any test sends: only tests of the limits meet them (with their own settings)."""
    return Settings(
        database_url=database_url,
        jwt_secret=JWT_SECRET,
        task_queue=task_queue,
        temporal_address=f"127.0.0.1:{free_port()}",
        ui_url=UI_URL,
        app_url="http://tracker.test",
        rate_limit_per_minute=1_000_000,
        auth_failure_limit_per_minute=1_000_000,
        outbound_allow="127.0.0.1",
        sms_url="http://127.0.0.1:9/sms",  # SMS can be chosen only where a gateway is configured
    )


@pytest.fixture
async def api_app(api_settings: Settings, db) -> FastAPI:
    return create_app(api_settings)


@pytest.fixture
async def api(api_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(api_app) as client:
        yield client


@pytest.fixture
async def temporal_api(api_settings: Settings, db, temporal_client: Client) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings.model_copy(update={"temporal_address": temporal_address(temporal_client)})

    async def same_client(_settings: Settings) -> Client:
        return temporal_client

    async with asgi_client(create_app(settings, same_client)) as client:
        yield client


@pytest.fixture
async def live_api(api_settings: Settings, db, temporal_client: Client) -> AsyncIterator[LiveServer]:
    """The app under uvicorn; it connects to the Temporal dev server from its own loop, as in production."""
    settings = api_settings.model_copy(update={"temporal_address": temporal_address(temporal_client)})
    server = LiveServer(create_app(settings))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def restore_templates(db):
    """Templates outlive ``db``'s truncation (they are seeded once): put back the seeded versions after the test."""
    async with db.begin() as session:
        seeded = (await session.execute(text("SELECT id, is_active FROM notification_templates"))).all()
    yield
    async with db.begin() as session:
        await session.execute(text("DELETE FROM experiments"))  # their arms name template versions
        await session.execute(
            text("DELETE FROM notification_templates WHERE NOT (id = ANY(:ids))"), {"ids": [row.id for row in seeded]}
        )
        await session.execute(text("UPDATE notification_templates SET is_active = false"))
        await session.execute(
            text("UPDATE notification_templates SET is_active = true WHERE id = ANY(:ids)"),
            {"ids": [row.id for row in seeded if row.is_active]},
        )


@pytest.fixture
async def restore_policies(db):
    """Escalation policies outlive ``db``'s truncation (seeded once by the migration): put them back after the test."""
    async with db.begin() as session:
        seeded = (await session.execute(text("SELECT * FROM escalation_policies"))).mappings().all()
    yield
    async with db.begin() as session:
        await session.execute(text("DELETE FROM escalation_policies"))
        for row in seeded:
            await session.execute(EscalationPolicyRow.__table__.insert().values(**row))
