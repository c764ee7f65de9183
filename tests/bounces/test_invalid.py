"""An SMS gateway's "number invalid" and a hook receiver's 410 Gone put the address on the suppression list
(reason INVALID), where planning finds it: real gateway / receiver on local ports, real PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.delivery.activities import DeliveryActivities
from activities.delivery.providers.sms import number_invalid
from notiflow.directory import upsert_users
from notiflow.models import NotificationQueueRow, SuppressionRow, WebhookSubscriptionRow
from notiflow.runs import NotificationRequest
from tests.delivery.hook_receiver import Receiver, Reply
from tests.delivery.sms_gateway import Scripted, SmsGateway
from tests.delivery.test_sms import PHONE, WITH_PHONE, opt_in, sms_settings
from tests.factories import ADMIN_EN, ADMIN_FR, REPORTER, event, issue_dict, ref
from workflows.delivery.types import DeliveryBatch


async def _deliver(db, settings, evt, channel: str) -> dict[str, NotificationQueueRow]:
    """Plan the event and run its ``channel`` batch once; that channel's rows by address."""
    activities = DeliveryActivities(db, settings)
    try:
        plan = await ActivityEnvironment().run(
            activities.plan_deliveries, NotificationRequest(source_id=evt.event_id, event=evt, workflow_id="wf-i")
        )
        ids = [d.queue_id for d in plan.deliveries if d.channel == channel]
        if ids:
            await ActivityEnvironment().run(
                activities.deliver, DeliveryBatch(channel=channel, queue_ids=ids, maximum_attempts=1)
            )
    finally:
        await activities.close()
    async with db() as session:
        rows = await session.scalars(
            select(NotificationQueueRow).where(
                NotificationQueueRow.event_id == evt.event_id, NotificationQueueRow.delivery_method == channel
            )
        )
        return {r.address: r for r in rows}


async def _listed(db) -> list[SuppressionRow]:
    async with db() as session:
        return list((await session.scalars(select(SuppressionRow))).all())


def test_which_gateway_answers_say_the_number_is_invalid():
    assert number_invalid(400, "SMS gateway answered 400: The 'To' number +2613 is not a valid phone number")
    assert number_invalid(400, "SMS gateway answered 400: Invalid 'To' Phone Number (code 21211)")
    assert number_invalid(422, "unknown subscriber")
    assert not number_invalid(400, "SMS gateway answered 400: Attempt to send to unsubscribed recipient (code 21610)")
    assert not number_invalid(401, "invalid number")  # our credentials, not their number
    assert not number_invalid(400, "bad token")


async def test_a_number_the_gateway_calls_invalid_is_suppressed_and_the_next_sms_skipped(db, settings):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER, WITH_PHONE])
    await opt_in(db, WITH_PHONE.id)
    async with SmsGateway() as gateway:
        gateway.replies.append(
            Scripted(400, {"code": 21211, "message": f"The 'To' number {PHONE} is not a valid phone number"})
        )
        configured = sms_settings(settings, gateway)
        first = await _deliver(
            db, configured, event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(WITH_PHONE))), "SMS"
        )
        assert first[PHONE].status == "FAILED"
        (entry,) = await _listed(db)
        assert (entry.channel, entry.address, entry.reason, entry.status_code) == ("SMS", PHONE, "INVALID", "400")
        assert "not a valid phone number" in entry.status_text and entry.queue_id == first[PHONE].id
        again = await _deliver(
            db, configured, event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(WITH_PHONE))), "SMS"
        )
        assert again[PHONE].status == "CANCELLED"
        assert again[PHONE].error_message.startswith("suppressed: invalid address 400 on ")
        assert len(gateway.attempts) == 1


async def test_an_other_refusal_by_the_gateway_lists_nothing(db, settings):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER, WITH_PHONE])
    await opt_in(db, WITH_PHONE.id)
    async with SmsGateway() as gateway:
        gateway.replies.append(Scripted(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}))
        rows = await _deliver(
            db,
            sms_settings(settings, gateway),
            event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(WITH_PHONE))),
            "SMS",
        )
    assert rows[PHONE].status == "FAILED" and await _listed(db) == []


async def test_a_webhook_answering_410_is_listed_invalid(db, settings):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER])
    async with Receiver(default=Reply(410, b"gone")) as receiver:
        async with db.begin() as session:
            hook = WebhookSubscriptionRow(
                name="hook",
                channel="WEBHOOK",
                url=receiver.url(),
                secret="whsec_" + "A" * 44,
                notification_types=["ISSUE_CREATED"],
            )
            session.add(hook)
        rows = await _deliver(db, settings, event("ISSUE_CREATED"), "WEBHOOK")
    assert rows[str(hook.id)].status == "FAILED"
    (entry,) = await _listed(db)
    assert (entry.channel, entry.address, entry.reason, entry.status_code) == (
        "WEBHOOK",
        str(hook.id),
        "INVALID",
        "410",
    )


async def test_an_address_listed_after_planning_is_not_sent_to_and_a_critical_row_falls_back(db, settings, smtp):
    """A row planned before its address was listed (held for quiet hours, retried through an outage)."""
    from activities.bounces.queries import add_suppression

    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER])
    activities = DeliveryActivities(db, settings)
    try:
        plans = {}
        for priority in ("HIGH", "CRITICAL"):
            evt = event("ISSUE_CREATED", issue=issue_dict(priority=priority))
            plans[priority] = await ActivityEnvironment().run(
                activities.plan_deliveries, NotificationRequest(source_id=evt.event_id, event=evt, workflow_id="wf")
            )
        async with db.begin() as session:
            await add_suppression(
                session, channel="EMAIL", address=ADMIN_EN.email, reason="HARD_BOUNCE", status_code="5.1.1"
            )
        results = {}
        for priority, plan in plans.items():
            emails = [d.queue_id for d in plan.deliveries if d.channel == "EMAIL"]
            results[priority] = await ActivityEnvironment().run(
                activities.deliver, DeliveryBatch(channel="EMAIL", queue_ids=emails, maximum_attempts=1)
            )
    finally:
        await activities.close()
    assert [m.rcpt_tos for m in smtp.sink.messages] == [[ADMIN_FR.email], [ADMIN_FR.email]]
    async with db() as session:
        rows = {
            (r.context_data["critical"], r.address): r
            for r in await session.scalars(
                select(NotificationQueueRow).where(NotificationQueueRow.delivery_method == "EMAIL")
            )
        }
    assert rows[(False, ADMIN_EN.email)].status == "CANCELLED"
    assert rows[(False, ADMIN_EN.email)].error_message.startswith("suppressed: hard bounce 5.1.1 on ")
    assert rows[(True, ADMIN_EN.email)].status == "FAILED"
    assert results["CRITICAL"].critical_failed == [str(rows[(True, ADMIN_EN.email)].id)]
    assert results["HIGH"].critical_failed == [] and results["HIGH"].sent == 1
