"""Durable delivery in process: outages outlasting the old 15 s, the deadline, visible failures, redelivery, resets.

Real Temporal dev server, real PostgreSQL, a real SMTP server over TCP. The
fault suite (tests/test_faults.py, `make faults`) kills real processes; these
tests pin the behaviour each fault relies on.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

from notiflow.client import NotificationClient
from notiflow.models import AuditLogRow, NotificationLogRow, NotificationQueueRow
from notiflow.runs import DeliveryOutcome, RedeliveryFilter
from notiflow.search import DELIVERY_OUTCOME
from tests.conftest import running_worker
from tests.factories import ADMIN_EN, ADMIN_FR, ASSIGNEE, DIRECTORY, event, issue_dict, ref


async def _result(client, workflow_id: str) -> DeliveryOutcome:
    return await client.get_workflow_handle(workflow_id, result_type=DeliveryOutcome).result()


async def _rows(db, **where) -> list[NotificationQueueRow]:
    async with db() as session:
        query = select(NotificationQueueRow)
        for column, value in where.items():
            query = query.where(getattr(NotificationQueueRow, column) == value)
        return list((await session.execute(query)).scalars())


async def test_an_outage_longer_than_the_attempt_budget_is_waited_out(temporal_client, settings, db, smtp):
    """Two attempts used to be the whole budget; with a deadline they are only the minimum."""
    patient = settings.model_copy(
        update={"notification_retry_attempts": 2, "retry_max_seconds": 0.5, "delivery_deadline": timedelta(seconds=60)}
    )
    async with running_worker(temporal_client, patient):
        nc = NotificationClient(temporal_client, patient)
        await nc.sync_users(DIRECTORY)
        smtp.stop()
        evt = event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(ASSIGNEE)), actor=ADMIN_EN)
        workflow_id = await nc.publish(evt)
        await asyncio.sleep(4.0)  # ~8 attempts at 0.2 → 0.5 s while the server is away
        smtp.start()
        outcome = await _result(temporal_client, workflow_id)
    assert outcome.channels["EMAIL"].sent == 1 and outcome.verdict == "SENT"
    (row,) = await _rows(db, event_id=evt.event_id, delivery_method="EMAIL")
    assert row.status == "SENT" and row.retry_count > 2
    assert [m.rcpt_tos for m in smtp.sink.messages] == [[ASSIGNEE.email]]
    assert smtp.sink.messages[0].message["Message-ID"] == f"<{row.id}@test.local>"


async def test_past_the_deadline_the_row_fails_and_the_run_is_findable(temporal_client, settings, db, smtp, worker):
    nc = NotificationClient(temporal_client, settings)
    await nc.sync_users(DIRECTORY)
    smtp.stop()  # and never back: the test deadline is 2 s
    evt = event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(ASSIGNEE)), actor=ADMIN_EN)
    workflow_id = await nc.publish(evt)
    outcome = await _result(temporal_client, workflow_id)
    assert outcome.channels["EMAIL"].failed == 1 and outcome.channels["IN_APP"].sent == 1
    assert outcome.verdict == "PARTIAL"
    (row,) = await _rows(db, event_id=evt.event_id, delivery_method="EMAIL")
    assert row.status == "FAILED" and row.error_message.startswith("gave up after")
    assert "unreachable" in row.error_message
    description = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert description.typed_search_attributes.get(DELIVERY_OUTCOME) == "PARTIAL"
    found = []
    for _ in range(50):  # visibility is eventually consistent
        found = [
            w.id
            async for w in temporal_client.list_workflows(f'DeliveryOutcome="PARTIAL" AND IssueId="{evt.issue.id}"')
        ]
        if found:
            break
        await asyncio.sleep(0.1)
    assert found == [workflow_id]


async def test_redelivery_resends_failed_rows_once_with_the_same_message_id(
    temporal_client, settings, db, smtp, worker
):
    nc = NotificationClient(temporal_client, settings)
    await nc.sync_users(DIRECTORY)
    smtp.sink.rejected[ADMIN_FR.email] = "Mailbox full"
    evt = event("ISSUE_CREATED")
    await _result(temporal_client, await nc.publish(evt))
    (failed,) = await _rows(db, event_id=evt.event_id, recipient_id=ADMIN_FR.id, delivery_method="EMAIL")
    assert failed.status == "FAILED"

    del smtp.sink.rejected[ADMIN_FR.email]  # the mailbox was emptied
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    wanted = RedeliveryFilter(issue_id=evt.issue.id, channel="EMAIL")
    workflow_id = await nc.redeliver(wanted, requested_by=ADMIN_EN.id, request_id=request_id)
    assert workflow_id == f"redeliver/{request_id}"
    outcome = await _result(temporal_client, workflow_id)
    assert outcome.channels["EMAIL"].sent == 1
    assert await nc.redeliver(wanted, requested_by=ADMIN_EN.id, request_id=request_id) == workflow_id
    await _result(temporal_client, workflow_id)
    again = await _result(temporal_client, await nc.redeliver(wanted, requested_by=ADMIN_EN.id))  # a new request
    assert again.channels == {}  # nothing FAILED is left

    to_fr = smtp.sink.to(ADMIN_FR.email)
    assert len(to_fr) == 1 and to_fr[0].message["Message-ID"] == f"<{failed.id}@test.local>"
    (row,) = await _rows(db, id=failed.id)
    assert row.status == "SENT" and row.workflow_id == workflow_id
    # The row says who re-queued it (once, though the request ran twice) and what was decided before.
    assert row.decision["outcome"] == "REQUEUED" and row.decision["requeued_by"] == ADMIN_EN.id
    assert row.decision["redelivery"] == request_id and row.decision["previous"]["outcome"] == "SEND"
    async with db() as session:
        audit = (await session.execute(select(AuditLogRow).where(AuditLogRow.target == request_id))).scalars().all()
        logs = (
            (
                await session.execute(
                    select(NotificationLogRow.status)
                    .where(NotificationLogRow.queue_id == failed.id)
                    .order_by(NotificationLogRow.created_at)
                )
            )
            .scalars()
            .all()
        )
    assert [(a.actor, a.action, a.details["requeued"]) for a in audit] == [(ADMIN_EN.id, "queue.redeliver", 1)]
    assert logs == ["FAILED", "REQUEUED", "SENT"]


async def test_resetting_a_run_sends_what_it_left_failed(temporal_client, settings, db, smtp, worker):
    nc = NotificationClient(temporal_client, settings)
    await nc.sync_users(DIRECTORY)
    smtp.sink.rejected[ADMIN_FR.email] = "Mailbox full"
    evt = event("ISSUE_CREATED")
    workflow_id = await nc.publish(evt)
    await _result(temporal_client, workflow_id)
    del smtp.sink.rejected[ADMIN_FR.email]

    handle = temporal_client.get_workflow_handle(workflow_id)
    history = await handle.fetch_history()
    first_task = next(
        e.event_id for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )
    reset = await temporal_client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal_client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            reason="SMTP outage over",
            workflow_task_finish_event_id=first_task,
            request_id=uuid.uuid4().hex,
        )
    )
    outcome = await temporal_client.get_workflow_handle(
        workflow_id, run_id=reset.run_id, result_type=DeliveryOutcome
    ).result()
    assert outcome.channels["EMAIL"].sent == 1  # only the row that had failed; the other one stays sent
    assert sorted(m.rcpt_tos[0] for m in smtp.sink.messages) == sorted([ADMIN_EN.email, ADMIN_FR.email])
    rows = await _rows(db, event_id=evt.event_id)
    assert {r.status for r in rows} == {"SENT"} and len(rows) == 4


async def test_on_call_is_a_role_and_a_critical_notice_never_goes_to_nobody(
    temporal_client, settings, db, smtp, worker
):
    from notiflow.contracts import User
    from notiflow.models import UserRow

    nc = NotificationClient(temporal_client, settings)
    nobody_on_call = [
        u.model_copy(update={"is_on_call": False, "roles": ["admin"]}) if "admin" in u.roles else u for u in DIRECTORY
    ]
    await nc.sync_users(nobody_on_call)
    crash = event(
        "AUTO_ISSUE_DETECTED", issue=issue_dict(priority="CRITICAL", is_auto_reported=True, reporter=None), actor=None
    )
    outcome = await _result(temporal_client, await nc.publish(crash))
    assert outcome.fallback == "no admin on call: sent to every admin"
    rows = await _rows(db, event_id=crash.event_id, delivery_method="EMAIL")
    assert {r.recipient_id for r in rows} == {ADMIN_EN.id, ADMIN_FR.id}
    assert all(r.context_data["fallback"] == outcome.fallback and r.status == "SENT" for r in rows)

    # DESIGN §2: "roles such as admin, on_call" — the role alone puts a person on call.
    await nc.sync_users([User(id=ADMIN_EN.id, name=ADMIN_EN.name, email=ADMIN_EN.email, roles=["admin", "on_call"])])
    async with db() as session:
        assert (await session.get(UserRow, ADMIN_EN.id)).is_on_call
    second = event(
        "AUTO_ISSUE_DETECTED", issue=issue_dict(priority="CRITICAL", is_auto_reported=True, reporter=None), actor=None
    )
    outcome = await _result(temporal_client, await nc.publish(second))
    assert outcome.fallback is None
    assert [r.recipient_id for r in await _rows(db, event_id=second.event_id, delivery_method="EMAIL")] == [ADMIN_EN.id]


async def test_a_workflow_task_that_keeps_failing_is_surfaced(temporal_env, settings, db, caplog):
    """A run the worker cannot decode is counted in the worker's metrics and logged with its run id."""
    import logging

    import httpx
    from temporalio.client import Client

    from notiflow.temporal import DATA_CONVERTER, metrics_runtime
    from programs.dev.ports import free_port

    address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        data_converter=DATA_CONVERTER,
        runtime=metrics_runtime(address),
    )
    caplog.set_level(logging.WARNING)
    async with running_worker(client, settings):
        handle = await client.start_workflow(  # bypasses publish's validation, as a foreign client could
            "IssueEventWorkflow",
            {"event_id": "not-an-event"},
            id=f"event/poison-{uuid.uuid4().hex[:6]}",
            task_queue=settings.task_queue,
        )
        failed = 0.0
        for _ in range(100):
            scrape = httpx.get(f"http://{address}/metrics").text
            failed = sum(
                float(line.rsplit(" ", 1)[1])
                for line in scrape.splitlines()
                if line.startswith("temporal_workflow_task_execution_failed")
            )
            if failed:
                break
            await asyncio.sleep(0.1)
        await handle.terminate("test over")
    assert failed >= 1
    assert any(
        handle.result_run_id in record.getMessage() or handle.result_run_id in str(record.args)
        for record in caplog.records
    )
