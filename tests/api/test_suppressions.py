"""The suppression list's admin routes (audited), /metrics counts, and a changed address that gets mail again."""

from __future__ import annotations

from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.bounces.queries import add_suppression
from activities.delivery.activities import DeliveryActivities
from notiflow.models import AuditLogRow, BounceReportRow, NotificationQueueRow
from notiflow.runs import NotificationRequest
from tests.api.helpers import ADMIN, SERVICE, add_users, assert_error, bearer, person
from tests.factories import event, issue_dict

ROUTE = "/api/v1/notifications/suppressions"


async def _audit(db) -> list[AuditLogRow]:
    async with db() as session:
        return list((await session.scalars(select(AuditLogRow).order_by(AuditLogRow.at))).all())


async def test_manual_entries_are_added_listed_filtered_and_removed_and_each_change_audited(api, db):
    created = await api.post(
        ROUTE, json={"channel": "EMAIL", "address": " Rakoto@Example.MG ", "note": "asked by phone"}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    entry = created.json()
    assert (entry["channel"], entry["address"], entry["reason"], entry["scope"]) == (
        "EMAIL",
        "rakoto@example.mg",
        "MANUAL",
        "ALL",
    )
    assert entry["created_by"] == "u-admin" and entry["active"] and entry["status_text"] == "asked by phone"
    assert entry["description"].startswith("suppressed: added by an admin on ")
    again = await api.post(ROUTE, json={"channel": "EMAIL", "address": "rakoto@example.mg"}, headers=ADMIN)
    assert_error(again, 409, "already on the list", entry["id"])
    phone = await api.post(ROUTE, json={"channel": "SMS", "address": "034 12 345 67"}, headers=ADMIN)
    assert phone.status_code == 201 and phone.json()["address"] == "+261341234567"
    assert_error(await api.post(ROUTE, json={"channel": "EMAIL", "address": "nobody"}, headers=ADMIN), 422, "email")
    assert_error(await api.post(ROUTE, json={"channel": "SMS", "address": "12"}, headers=ADMIN), 422, "phone")
    async with db.begin() as session:
        await add_suppression(
            session, channel="EMAIL", address="gone@example.mg", reason="HARD_BOUNCE", status_code="5.1.1"
        )

    listed = (await api.get(ROUTE, headers=ADMIN)).json()
    assert [i["address"] for i in listed["items"]] == ["gone@example.mg", "+261341234567", "rakoto@example.mg"]
    page = (await api.get(ROUTE, params={"limit": 2}, headers=ADMIN)).json()
    rest = (await api.get(ROUTE, params={"limit": 2, "cursor": page["next_cursor"]}, headers=ADMIN)).json()
    assert [i["address"] for i in page["items"] + rest["items"]] == [i["address"] for i in listed["items"]]
    assert rest["next_cursor"] is None
    bounced = (await api.get(ROUTE, params={"reason": "HARD_BOUNCE"}, headers=ADMIN)).json()["items"]
    assert [i["description"][:29] for i in bounced] == ["suppressed: hard bounce 5.1.1"]
    by_channel = (await api.get(ROUTE, params={"channel": "SMS"}, headers=ADMIN)).json()["items"]
    assert [i["address"] for i in by_channel] == ["+261341234567"]
    by_address = (await api.get(ROUTE, params={"address": "RAKOTO@example.mg"}, headers=ADMIN)).json()["items"]
    assert [i["id"] for i in by_address] == [entry["id"]]
    assert_error(await api.get(ROUTE, params={"reason": "BORED"}, headers=ADMIN), 422, "HARD_BOUNCE")

    removed = await api.delete(f"{ROUTE}/{entry['id']}", headers=ADMIN)
    assert removed.status_code == 200 and not removed.json()["active"] and removed.json()["removed_by"] == "u-admin"
    assert (await api.delete(f"{ROUTE}/{entry['id']}", headers=ADMIN)).status_code == 200  # as is, not audited twice
    inactive = (await api.get(ROUTE, params={"active": "false"}, headers=ADMIN)).json()["items"]
    assert [i["id"] for i in inactive] == [entry["id"]]
    readded = await api.post(ROUTE, json={"channel": "EMAIL", "address": "rakoto@example.mg"}, headers=ADMIN)
    assert readded.status_code == 201 and readded.json()["id"] != entry["id"]
    assert_error(await api.delete(f"{ROUTE}/00000000-0000-4000-8000-000000000000", headers=ADMIN), 404, "GET")

    audit = [(a.action, a.actor, a.target) for a in await _audit(db)]
    assert audit == [
        ("suppression.create", "u-admin", entry["id"]),
        ("suppression.create", "u-admin", phone.json()["id"]),
        ("suppression.delete", "u-admin", entry["id"]),
        ("suppression.create", "u-admin", readded.json()["id"]),
    ]


async def test_only_admins(api, db):
    assert (await api.get(ROUTE)).status_code == 401
    assert (await api.get(ROUTE, headers=bearer("u-1"))).status_code == 403
    refused = await api.post(ROUTE, json={"channel": "EMAIL", "address": "a@b.mg"}, headers=bearer("u-1"))
    assert refused.status_code == 403


async def test_a_person_whose_address_changes_is_not_held_back_by_the_old_one(api, db, api_settings):
    old = person("u-ops", email="old@example.mg", roles=["admin"])
    await add_users(db, old, person("u-rep", email="rep@example.mg"))
    await api.post(ROUTE, json={"channel": "EMAIL", "address": "old@example.mg"}, headers=ADMIN)

    async def planned_mail() -> NotificationQueueRow:
        evt = event("ISSUE_CREATED")
        activities = DeliveryActivities(db, api_settings)
        try:
            await ActivityEnvironment().run(
                activities.plan_deliveries, NotificationRequest(source_id=evt.event_id, event=evt, workflow_id="wf")
            )
        finally:
            await activities.close()
        async with db() as session:
            return (
                await session.scalars(
                    select(NotificationQueueRow).where(
                        NotificationQueueRow.event_id == evt.event_id,
                        NotificationQueueRow.recipient_id == "u-ops",
                        NotificationQueueRow.delivery_method == "EMAIL",
                    )
                )
            ).one()

    before = await planned_mail()
    assert before.status == "CANCELLED" and before.error_message.startswith("suppressed: added by an admin")
    moved = old.model_copy(update={"email": "new@example.mg"})
    assert (await api.put("/api/v1/users/u-ops", json=moved.model_dump(mode="json"), headers=SERVICE)).is_success
    after = await planned_mail()
    assert after.status == "PENDING" and after.address == "new@example.mg"


async def test_metrics_count_bounces_complaints_and_suppressions_by_channel(api, db):
    async with db.begin() as session:
        await add_suppression(session, channel="EMAIL", address="a@example.mg", reason="HARD_BOUNCE")
        await add_suppression(
            session, channel="EMAIL", address="b@example.mg", reason="COMPLAINT", scope="NON_CRITICAL"
        )
        await add_suppression(session, channel="SMS", address="+261341234567", reason="INVALID")
        for bounce_type, unmatched in (
            ("HARD", None),
            ("HARD", None),
            ("SOFT", None),
            ("COMPLAINT", None),
            ("HARD", "?"),
        ):
            session.add(
                BounceReportRow(kind="DSN", raw_size=1, raw=b"x", bounce_type=bounce_type, unmatched_reason=unmatched)
            )
    text = (await api.get("/metrics")).text
    assert 'notiflow_bounces{channel="EMAIL",type="HARD"} 2.0' in text
    assert 'notiflow_bounces{channel="EMAIL",type="SOFT"} 1.0' in text
    assert 'notiflow_complaints{channel="EMAIL"} 1.0' in text
    assert "notiflow_bounce_reports_unmatched 1.0" in text
    assert 'notiflow_suppressions{channel="EMAIL",reason="HARD_BOUNCE"} 1.0' in text
    assert 'notiflow_suppressions{channel="SMS",reason="INVALID"} 1.0' in text


async def test_why_says_suppressed_and_where_a_critical_one_went_instead(api, db, api_settings):
    on_call = person("u-ops", email="ops@example.mg", phone="+261341234567", roles=["admin"])
    await add_users(db, on_call, person("u-rep", email="rep@example.mg"))
    await api.post(ROUTE, json={"channel": "EMAIL", "address": "ops@example.mg"}, headers=ADMIN)
    evt = event("ISSUE_CREATED", issue=issue_dict(priority="CRITICAL"), actor=person("u-rep"))
    activities = DeliveryActivities(db, api_settings)
    try:
        await ActivityEnvironment().run(
            activities.plan_deliveries, NotificationRequest(source_id=evt.event_id, event=evt, workflow_id="wf")
        )
    finally:
        await activities.close()
    answer = (
        await api.get("/api/v1/notifications/why", params={"issue_id": evt.issue.id, "user_id": "u-ops"}, headers=ADMIN)
    ).json()
    decisions = {d["channel"]: d for e in answer["events"] for d in e["decisions"]}
    assert decisions["EMAIL"]["decision"] == "skipped"
    assert decisions["EMAIL"]["reason"].startswith("suppressed: added by an admin on ")
    assert f"sent instead as SMS {decisions['SMS']['queue_id']}" in decisions["EMAIL"]["reason"]
    assert decisions["SMS"]["decision"] == "pending"
    async with db() as session:
        rows = {
            r.delivery_method: r
            for r in await session.scalars(
                select(NotificationQueueRow).where(NotificationQueueRow.event_id == evt.event_id)
            )
            if r.recipient_id == "u-ops"
        }
    assert rows["EMAIL"].decision["outcome"] == "SKIPPED" and rows["EMAIL"].decision["suppressed"]["reason"] == "MANUAL"
    assert rows["EMAIL"].decision["fallback_to"] == {"channel": "SMS", "queue_id": str(rows["SMS"].id)}
    assert rows["SMS"].decision["fallback_of"] == str(rows["EMAIL"].id)
    assert rows["SMS"].decision["reason"] == "critical: the EMAIL address is suppressed, sent instead by SMS"
