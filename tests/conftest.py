"""Session-wide real services: PostgreSQL (a migrated database of our own), a
Temporal dev server, and per-test SMTP servers and task queues."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from notiflow.db import make_engine, make_sessionmaker, upgrade_head
from notiflow.search import SEARCH_ATTRIBUTES
from notiflow.settings import Settings
from notiflow.temporal import DATA_CONVERTER
from programs.dev.mailcatcher import MailCatcher
from tests.services import PostgresProvider, service_settings, temporal_binary

#: Fixtures of the time-skipping server (time_env, ts_worker) for every test module.
pytest_plugins = ["tests.time_skipping"]

#: Tables emptied between tests (templates and escalation policies keep their seeded rows).
DATA_TABLES = (
    "notification_logs, in_app_notifications, notification_queue, notification_preferences, "
    "issue_events, issues, webhook_subscriptions, users, audit_log, bounce_reports, suppressions, inbox_counts, "
    "experiments, experiment_arms"
)


@pytest.fixture(scope="session")
async def postgres() -> AsyncIterator[PostgresProvider]:
    provider = PostgresProvider()
    await provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
async def database_url(postgres: PostgresProvider) -> AsyncIterator[str]:
    """One migrated, seeded database for the session; dropped at the end."""
    from notiflow.templates.store import seed_templates

    url = await postgres.create_database()
    await asyncio.to_thread(upgrade_head, url)
    engine = make_engine(url, pool_size=2)
    await seed_templates(make_sessionmaker(engine))
    await engine.dispose()
    yield url
    await postgres.drop_database(url)


@pytest.fixture
async def db(database_url: str):
    """A session factory over an emptied database."""
    engine = make_engine(database_url, pool_size=5)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {DATA_TABLES} CASCADE"))
    yield make_sessionmaker(engine)
    await engine.dispose()


#: Every test's worker polls a task queue of its own, all in one Worker Deployment version (notiflow, this
#: checkout's build id): past the server's default of 100 task queues per version, workers would get nothing.
MANY_TASK_QUEUES = [
    "--dynamic-config-value",
    "matching.maxTaskQueuesInDeploymentVersion=100000",
    "--dynamic-config-value",
    "matching.maxTaskQueuesInDeployment=100000",
]


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary("temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=MANY_TASK_QUEUES,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def smtp() -> MailCatcher:
    server = MailCatcher()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(database_url: str, smtp: MailCatcher, task_queue: str) -> Settings:
    """Settings pointing at this test's services, with short retry delays."""
    return service_settings(database_url, smtp.port, task_queue)


@pytest.fixture
async def worker(temporal_client: Client, settings: Settings, db):
    """A running notiflow worker on this test's task queue."""
    from workers.main import build_worker

    async with build_worker(temporal_client, settings) as running:
        yield running


@contextlib.asynccontextmanager
async def running_worker(client: Client, settings: Settings):
    from workers.main import build_worker

    async with build_worker(client, settings) as running:
        yield running
