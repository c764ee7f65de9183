"""Fixtures and helpers for tests of long timers on Temporal's time-skipping test server.

The server's clock starts at the real time and jumps forward only when told
(``skip_to``) or while a client awaits a workflow result. The tests here never
await results of workflows that sit on timers; they poll ``describe`` instead,
so time moves only where a test says so.

Set ``NOTIFLOW_RECORD_HISTORIES=1`` to also write the histories tests pass to
``save_history`` into tests/histories/ (replayed by tests/test_replay.py).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from notiflow.contracts import IssueEvent, User, parse_event
from notiflow.directory import upsert_users
from notiflow.models import NotificationQueueRow
from notiflow.search import SEARCH_ATTRIBUTES
from notiflow.temporal import DATA_CONVERTER
from tests.conftest import running_worker
from tests.factories import ADMIN_EN, event_dict
from tests.services import temporal_binary
from workers.main import WORKFLOW_RUNNER
from workers.registry import ALL_WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"


async def register_search_attributes(client: Client) -> None:
    """The time-skipping server knows no custom search attributes until told, like a fresh real server."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES},
        )
    )


@pytest.fixture
async def time_env():
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_binary("temporal-test-server"),
        data_converter=DATA_CONVERTER,
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture
async def ts_worker(time_env, settings, db):
    """A notiflow worker on this test's task queue, against the time-skipping server."""
    async with running_worker(time_env.client, settings) as worker:
        yield worker


async def add_users(db, users: list[User]) -> None:
    async with db.begin() as session:
        await upsert_users(session, users)


def event_at(event_type: str, issue: dict, when: datetime, *, actor: User = ADMIN_EN, **extra) -> IssueEvent:
    """An event that happens at ``when`` on the server's clock."""
    return parse_event(event_dict(event_type, issue=issue, actor=actor, **extra) | {"occurred_at": when.isoformat()})


async def mails_of_type(db, smtp, notification_type: str) -> list:
    """Mails the SMTP server received for queue rows of one type (matched by their Message-ID)."""
    async with db() as session:
        ids = {
            str(i)
            for i in (
                await session.execute(
                    select(NotificationQueueRow.id).where(NotificationQueueRow.notification_type == notification_type)
                )
            ).scalars()
        }
    return [m for m in smtp.sink.messages if m.message["Message-ID"].strip("<>").split("@")[0] in ids]


async def skip_to(env: WorkflowEnvironment, moment: datetime) -> None:
    """Move the server's clock to ``moment``, firing every timer on the way."""
    remaining = moment - await env.get_current_time()
    if remaining > timedelta(0):
        await env.sleep(remaining)


async def wait_until(predicate, *, timeout: float = 20.0, what: str = "condition"):
    """Poll an async predicate in real time (the server's clock keeps still)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    return result


async def wait_closed(handle: WorkflowHandle, timeout: float = 20.0):
    async def closed():
        description = await handle.describe()
        return description if description.status != WorkflowExecutionStatus.RUNNING else None

    return await wait_until(closed, timeout=timeout, what=f"{handle.id} to close")


async def save_history(handle: WorkflowHandle, name: str) -> None:
    """Record a replay fixture when NOTIFLOW_RECORD_HISTORIES=1 (see tests/record_histories.py)."""
    if os.environ.get("NOTIFLOW_RECORD_HISTORIES") == "1":
        history = await handle.fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json())


async def run_on_fake(time_env, fake, run, argument, kind: str) -> tuple[WorkflowHandle, Any]:
    """Run ``run`` (id ``{kind}/…``) to its end on a fresh task queue whose worker serves ``fake``'s activities."""
    queue = f"{kind}-{uuid.uuid4().hex[:8]}"
    async with Worker(
        time_env.client,
        task_queue=queue,
        workflows=ALL_WORKFLOWS,
        activities=fake.activities(),
        workflow_runner=WORKFLOW_RUNNER,
    ):
        handle = await time_env.client.start_workflow(run, argument, id=f"{kind}/{queue}", task_queue=queue)
        return handle, await handle.result()
