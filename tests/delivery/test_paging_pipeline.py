"""A plan larger than a page, end to end (dev server, PostgreSQL, SMTP): a few hundred admins, pages of 25 rows —
every row is sent exactly once, each mail under its own stable Message-ID."""

from __future__ import annotations

from sqlalchemy import select

from notiflow.client import NotificationClient
from notiflow.contracts import DeliveryStatus, User
from notiflow.models import NotificationQueueRow
from notiflow.runs import DeliveryOutcome
from tests.conftest import running_worker
from tests.factories import REPORTER, event

ADMINS = 150
PAGE = 25


async def test_a_large_audience_is_delivered_in_pages_each_row_once(temporal_client, settings, smtp, db):
    # the slices after the first are decided and rendered in the worker's planning process
    paged = settings.model_copy(update={"delivery_page_size": PAGE, "planning_process_from": PAGE})
    admins = [
        User(id=f"u-admin-{i:03d}", name=f"Admin {i}", email=f"admin{i:03d}@example.mg", locale="en", roles=["admin"])
        for i in range(ADMINS)
    ]
    async with running_worker(temporal_client, paged):
        nc = NotificationClient(temporal_client, paged)
        await nc.sync_users([*admins, REPORTER])
        evt = event("ISSUE_CREATED")
        handle = temporal_client.get_workflow_handle(await nc.publish(evt), result_type=DeliveryOutcome)
        outcome = await handle.result()
        child = await temporal_client.get_workflow_handle(f"pages/{evt.event_id}").describe()
        mails = await smtp.wait_for(ADMINS, timeout=60)

    assert outcome.channels["EMAIL"].sent == ADMINS and outcome.channels["IN_APP"].sent == ADMINS
    assert child.workflow_type == "DeliverPagesWorkflow"  # the pages after the first went through the child
    recipients = [m.rcpt_tos[0] for m in mails]
    assert sorted(recipients) == sorted(a.email for a in admins)  # each exactly once
    message_ids = {m.message["Message-ID"] for m in mails}
    assert len(message_ids) == ADMINS
    async with db() as session:
        rows = list(
            (await session.execute(select(NotificationQueueRow).where(NotificationQueueRow.event_id == evt.event_id)))
            .scalars()
            .all()
        )
    assert len(rows) == 2 * ADMINS and all(r.status == DeliveryStatus.SENT for r in rows)
    # the Message-ID names the row (stable across retries and redeliveries): one mail per EMAIL row
    assert message_ids == {f"<{r.id}@test.local>" for r in rows if r.delivery_method == "EMAIL"}
