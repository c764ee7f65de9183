"""The bounce receiver over real SMTP, against real PostgreSQL (and the Temporal dev server for the runs).

A mail goes out with a VERP envelope sender; a DSN comes back to it over SMTP; the row is marked, the address
suppressed, and the next notification to that person is skipped — or, if critical, goes by SMS at once.
"""

from __future__ import annotations

import asyncio
import uuid

import aiosmtplib
import pytest
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.bounces.compose import abuse_report, delivery_status_notification
from activities.bounces.queries import Received, record_report
from activities.delivery.activities import DeliveryActivities
from notiflow.client import NotificationClient
from notiflow.directory import upsert_users
from notiflow.models import BounceReportRow, EngagementEventRow, NotificationQueueRow, SuppressionRow
from notiflow.runs import DeliveryOutcome, NotificationRequest
from notiflow.verp import queue_id_of
from programs.bounces import BounceReceiver
from tests.bounces.samples import POSTFIX_DSN
from tests.conftest import running_worker
from tests.delivery.sms_gateway import SmsGateway
from tests.delivery.test_sms import sms_settings
from tests.factories import ADMIN_EN, ADMIN_FR, ASSIGNEE, REPORTER, event, issue_dict, ref
from workflows.delivery.types import DeliveryBatch

BOUNCE_ADDRESS = "bounces@notiflow.test"
PHONE = "+261341234567"
STAFF = ASSIGNEE.model_copy(update={"phone": PHONE})


@pytest.fixture
def bounce_settings(settings):
    return settings.model_copy(update={"bounce_address": BOUNCE_ADDRESS})


@pytest.fixture
async def receiver(db, bounce_settings):
    async with BounceReceiver(db, bounce_settings, host="127.0.0.1", port=0) as running:
        yield running


async def _send_report(receiver: BounceReceiver, raw: bytes, to: str) -> None:
    """As an MTA sends a report: from the null sender (``MAIL FROM:<>``)."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port) as client:
        await client.sendmail("", [to], raw)


async def _run(temporal_client, settings, evt) -> DeliveryOutcome:
    async with running_worker(temporal_client, settings):
        workflow_id = await NotificationClient(temporal_client, settings).publish(evt)
        handle = temporal_client.get_workflow_handle(workflow_id, result_type=DeliveryOutcome)
        return await handle.result()


async def _rows(db, **where) -> list[NotificationQueueRow]:
    async with db() as session:
        query = select(NotificationQueueRow).order_by(NotificationQueueRow.created_at)
        for key, value in where.items():
            query = query.where(getattr(NotificationQueueRow, key) == value)
        return list((await session.scalars(query)).all())


async def _reports(db) -> list[BounceReportRow]:
    async with db() as session:
        return list((await session.scalars(select(BounceReportRow).order_by(BounceReportRow.received_at))).all())


async def _engagement(db) -> list[tuple]:
    async with db() as session:
        rows = await session.scalars(select(EngagementEventRow).order_by(EngagementEventRow.id))
        return [(e.queue_id, e.kind, e.channel, e.recipient_id, e.count) for e in rows]


async def _suppressions(db) -> list[SuppressionRow]:
    async with db() as session:
        return list((await session.scalars(select(SuppressionRow).order_by(SuppressionRow.created_at))).all())


async def _plan(db, settings, evt) -> dict[tuple[str, str], NotificationQueueRow]:
    """Plan one event (no sending): its rows by (recipient, channel)."""
    activities = DeliveryActivities(db, settings)
    try:
        await ActivityEnvironment().run(
            activities.plan_deliveries, NotificationRequest(source_id=evt.event_id, event=evt, workflow_id="wf-b")
        )
    finally:
        await activities.close()
    return {(r.recipient_id, r.delivery_method): r for r in await _rows(db, event_id=evt.event_id)}


async def _sent_mail(db, settings, evt) -> list[NotificationQueueRow]:
    """Plan and deliver an event's mail through the activities (no workflow): the EMAIL rows."""
    activities = DeliveryActivities(db, settings)
    try:
        plan = await ActivityEnvironment().run(
            activities.plan_deliveries, NotificationRequest(source_id=evt.event_id, event=evt, workflow_id="wf-b")
        )
        emails = [d.queue_id for d in plan.deliveries if d.channel == "EMAIL"]
        await ActivityEnvironment().run(
            activities.deliver, DeliveryBatch(channel="EMAIL", queue_ids=emails, maximum_attempts=1)
        )
    finally:
        await activities.close()
    return await _rows(db, event_id=evt.event_id, delivery_method="EMAIL")


async def test_a_dsn_over_smtp_suppresses_the_address_the_next_mail_is_skipped_and_a_critical_one_goes_by_sms(
    temporal_client, db, bounce_settings, smtp, receiver
):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER, STAFF])
    assigned = event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(STAFF)))
    await _run(temporal_client, bounce_settings, assigned)
    (mail,) = smtp.sink.to(STAFF.email)
    (row,) = await _rows(db, event_id=assigned.event_id, recipient_id=STAFF.id, delivery_method="EMAIL")
    local, _, domain = mail.envelope_from.partition("@")
    assert domain == "notiflow.test" and local.startswith("bounces+")
    assert queue_id_of(local.split("+", 1)[1]) == row.id  # the envelope sender names the row
    assert mail.message["Message-ID"] == row.provider_message_id  # Message-IDs unchanged

    dsn = delivery_status_notification(
        original=mail.message.as_bytes(), envelope_sender=mail.envelope_from, recipient=STAFF.email
    )
    await _send_report(receiver, dsn, mail.envelope_from)

    (report,) = await _reports(db)
    assert (report.kind, report.bounce_type, report.status, report.queue_id) == ("DSN", "HARD", "5.1.1", row.id)
    assert report.unmatched_reason is None and report.raw == dsn and report.raw_size == len(dsn)
    assert report.engagement["kind"] == "BOUNCED" and report.engagement["queue_id"] == str(row.id)
    assert await _engagement(db) == [(row.id, "BOUNCED", "EMAIL", STAFF.id, 1)]
    (bounced,) = await _rows(db, id=row.id)
    assert bounced.context_data["bounced"]["status"] == "5.1.1"
    (entry,) = await _suppressions(db)
    assert (entry.channel, entry.address, entry.reason, entry.scope) == ("EMAIL", STAFF.email, "HARD_BOUNCE", "ALL")
    assert entry.status_code == "5.1.1" and "User unknown" in entry.status_text and entry.queue_id == row.id
    assert report.suppression_id == entry.id

    # The next (non-critical) notification to that person sends no mail: the row says why.
    comment = event("ISSUE_COMMENT_ADDED", issue=assigned.issue.model_dump(mode="json"), actor=REPORTER)
    await _run(temporal_client, bounce_settings, comment)
    (skipped,) = await _rows(db, event_id=comment.event_id, recipient_id=STAFF.id, delivery_method="EMAIL")
    assert skipped.status == "CANCELLED"
    assert skipped.error_message == f"suppressed: hard bounce 5.1.1 on {entry.created_at:%Y-%m-%d}"
    assert len(smtp.sink.to(STAFF.email)) == 1
    assert not await _rows(db, event_id=comment.event_id, recipient_id=STAFF.id, delivery_method="SMS")

    # A critical one goes by SMS at once (a phone on file is enough), and both rows say so.
    critical = event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(STAFF), priority="CRITICAL"))
    async with SmsGateway() as gateway:
        await _run(temporal_client, sms_settings(bounce_settings, gateway), critical)
    assert [m.to for m in gateway.messages] == [PHONE] and critical.issue.id in gateway.messages[0].text
    rows = {r.delivery_method: r for r in await _rows(db, event_id=critical.event_id, recipient_id=STAFF.id)}
    assert rows["EMAIL"].status == "CANCELLED" and rows["EMAIL"].error_message.startswith("suppressed: hard bounce")
    assert rows["SMS"].status == "SENT" and rows["SMS"].context_data["fallback_of"] == str(rows["EMAIL"].id)
    assert rows["EMAIL"].context_data["fallback_to"] == {"channel": "SMS", "queue_id": str(rows["SMS"].id)}
    assert len(smtp.sink.to(STAFF.email)) == 1


async def test_a_dsn_without_a_verp_code_is_matched_by_message_id(db, bounce_settings, smtp, receiver):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER])
    rows = await _sent_mail(db, bounce_settings, event("ISSUE_CREATED"))
    row = next(r for r in rows if r.recipient_id == ADMIN_EN.id)
    dsn = POSTFIX_DSN.format(to=BOUNCE_ADDRESS, rcpt=ADMIN_EN.email.upper(), message_id=row.provider_message_id)
    await _send_report(receiver, dsn.encode(), BOUNCE_ADDRESS)  # the plain address: no code
    (report,) = await _reports(db)
    assert report.verp_code is None and report.message_id == row.provider_message_id
    assert report.queue_id == row.id and report.bounce_type == "HARD" and report.unmatched_reason is None
    (entry,) = await _suppressions(db)
    assert entry.address == ADMIN_EN.email and entry.reason == "HARD_BOUNCE"


async def test_a_complaint_suppresses_non_critical_mail_only(db, bounce_settings, smtp, receiver):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER, STAFF])
    (row,) = await _sent_mail(db, bounce_settings, event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(STAFF))))
    (mail,) = smtp.sink.to(STAFF.email)
    arf = abuse_report(original=mail.message.as_bytes(), recipient=STAFF.email, to=mail.envelope_from)
    await _send_report(receiver, arf, mail.envelope_from)
    (report,) = await _reports(db)
    assert (report.kind, report.bounce_type, report.queue_id) == ("ARF", "COMPLAINT", row.id)
    assert report.engagement["kind"] == "COMPLAINED"
    assert await _engagement(db) == [(row.id, "COMPLAINED", "EMAIL", STAFF.id, 1)]
    (entry,) = await _suppressions(db)
    assert (entry.reason, entry.scope, entry.status_code) == ("COMPLAINT", "NON_CRITICAL", "abuse")

    normal = await _plan(db, bounce_settings, event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(STAFF))))
    assert normal[(STAFF.id, "EMAIL")].status == "CANCELLED"
    assert normal[(STAFF.id, "EMAIL")].error_message.startswith("suppressed: complaint abuse on ")
    urgent = await _plan(
        db, bounce_settings, event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(STAFF), priority="CRITICAL"))
    )
    assert urgent[(STAFF.id, "EMAIL")].status == "PENDING" and (STAFF.id, "SMS") not in urgent

    # A hard bounce afterwards widens the entry to every notification.
    dsn = delivery_status_notification(
        original=mail.message.as_bytes(), envelope_sender=mail.envelope_from, recipient=STAFF.email
    )
    await _send_report(receiver, dsn, mail.envelope_from)
    active = [e for e in await _suppressions(db) if e.active]
    assert [(e.reason, e.scope) for e in active] == [("HARD_BOUNCE", "ALL")]


async def test_garbage_and_a_dsn_for_an_unknown_message_are_kept_and_the_receiver_goes_on(
    db, bounce_settings, smtp, receiver
):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER])
    unknown = POSTFIX_DSN.format(to=BOUNCE_ADDRESS, rcpt="x@remote.example", message_id="<nobody@elsewhere>")
    await _send_report(receiver, b"Subject: hello\r\n\r\n\x00\xff not a report at all", BOUNCE_ADDRESS)
    await _send_report(receiver, unknown.encode(), BOUNCE_ADDRESS)
    forged = f"bounces+{'a' * 26}@notiflow.test"  # a code that names no row
    await _send_report(receiver, unknown.encode(), forged)
    garbage, stranger, bad_code = await _reports(db)
    assert garbage.kind == "UNKNOWN" and "neither a delivery status notification" in garbage.unmatched_reason
    assert stranger.kind == "DSN" and stranger.queue_id is None
    assert stranger.unmatched_reason == "no VERP code; Message-ID <nobody@elsewhere> matches no mail notiflow sent"
    assert bad_code.verp_code == "a" * 26 and "names no mail notiflow sent" in bad_code.unmatched_reason
    assert await _suppressions(db) == []

    # Still serving: a real bounce afterwards is applied.
    rows = await _sent_mail(db, bounce_settings, event("ISSUE_CREATED"))
    mail = smtp.sink.to(ADMIN_EN.email)[0]
    dsn = delivery_status_notification(
        original=mail.message.as_bytes(), envelope_sender=mail.envelope_from, recipient=ADMIN_EN.email
    )
    await _send_report(receiver, dsn, mail.envelope_from)
    assert [e.address for e in await _suppressions(db)] == [ADMIN_EN.email]
    assert receiver.handler.received == 4 and len(rows) == 2


async def test_only_the_bounce_addresses_are_accepted(receiver):
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await _send_report(receiver, b"Subject: x\r\n\r\nx", "postmaster@notiflow.test")
    assert refused.value.recipients[0].code == 550


async def test_soft_bounces_suppress_at_the_limit_of_distinct_mails_within_seven_days(db, bounce_settings, smtp):
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, ADMIN_FR, REPORTER])
    settings = bounce_settings.model_copy(update={"soft_bounce_limit": 3})
    mails = []
    for _ in range(3):
        rows = await _sent_mail(db, settings, event("ISSUE_CREATED"))
        mails.append(next(r for r in rows if r.recipient_id == ADMIN_FR.id))

    async def soft(row: NotificationQueueRow) -> BounceReportRow:
        dsn = POSTFIX_DSN.format(to=BOUNCE_ADDRESS, rcpt=ADMIN_FR.email, message_id=row.provider_message_id)
        dsn = dsn.replace("Status: 5.1.1", "Status: 4.2.2").replace("Action: failed", "Action: delayed")
        async with db.begin() as session:
            return await record_report(
                session,
                Received(dsn.encode(), "", BOUNCE_ADDRESS, None),
                soft_bounce_limit=settings.soft_bounce_limit,
            )

    first = await soft(mails[0])
    await soft(mails[0])  # the same mail delayed twice counts once
    await soft(mails[1])
    assert first.bounce_type == "SOFT" and await _suppressions(db) == []
    third = await soft(mails[2])
    (entry,) = await _suppressions(db)
    assert (entry.reason, entry.status_code, entry.queue_id) == ("SOFT_BOUNCE_LIMIT", "4.2.2", mails[2].id)
    assert entry.status_text.startswith("3 mails soft-bounced within 7 days")
    assert third.suppression_id == entry.id
    planned = await _plan(db, settings, event("ISSUE_CREATED"))
    assert planned[(ADMIN_FR.id, "EMAIL")].error_message.startswith("suppressed: repeated soft bounces 4.2.2 on ")
    assert planned[(ADMIN_EN.id, "EMAIL")].status == "PENDING"


async def test_a_report_for_a_row_id_that_is_not_a_mail_is_kept_unmatched(db, bounce_settings):
    fake = f"<{uuid.uuid4()}@test.local>"
    dsn = POSTFIX_DSN.format(to=BOUNCE_ADDRESS, rcpt="x@remote.example", message_id=fake)
    async with db.begin() as session:
        entry = await record_report(session, Received(dsn.encode(), "", BOUNCE_ADDRESS, None), soft_bounce_limit=3)
    assert entry.queue_id is None and fake in entry.unmatched_reason


async def test_the_dev_mail_catcher_bounces_mail_for_bounce_addresses_through_the_receiver(
    db, bounce_settings, smtp, receiver
):
    """`notiflow dev`'s catcher: mail to bounce@… is accepted, then a DSN goes to its VERP sender."""
    bouncing = REPORTER.model_copy(update={"id": "u-bouncing", "email": "bounce@example.mg", "roles": ["admin"]})
    async with db.begin() as session:
        await upsert_users(session, [ADMIN_EN, REPORTER, bouncing])
    smtp.sink.bounce_to = ("127.0.0.1", receiver.port)
    rows = await _sent_mail(db, bounce_settings, event("ISSUE_CREATED"))
    row = next(r for r in rows if r.recipient_id == bouncing.id)
    for _ in range(200):
        if await _suppressions(db):
            break
        await asyncio.sleep(0.05)
    (entry,) = await _suppressions(db)
    assert (entry.address, entry.reason, entry.queue_id) == ("bounce@example.mg", "HARD_BOUNCE", row.id)
    assert [rcpt for _, rcpt in smtp.sink.bounced] == ["bounce@example.mg"]  # the admin's mail did not bounce
