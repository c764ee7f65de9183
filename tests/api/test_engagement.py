"""Engagement over HTTP: wrapped links (/r/), the open pixel (/o/), the bell's reports, read / archive,
one-click unsubscribe, and what operators see (queue, Why (not)?, /metrics)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert, select

from notiflow.engagement import OPEN_PIXEL, new_code, record_engagement
from notiflow.models import EngagementEventRow, InAppNotificationRow, NotificationQueueRow, TrackedLinkRow
from notiflow.tokens import UnsubscribeRequest, make_unsubscribe_token
from programs.api.app import create_app
from tests.api.helpers import ADMIN, JWT_SECRET, add_users, asgi_client, bearer, person

TARGET = "http://tracker.test/admin/issues/ISS-42"
INBOX = "/api/v1/notifications/inbox"


async def queue_row(db, *, user_id: str = "u-1", channel: str = "EMAIL", sent_at: datetime | None = None) -> uuid.UUID:
    row_id = uuid.uuid4()
    async with db.begin() as session:
        await session.execute(
            insert(NotificationQueueRow).values(
                id=row_id,
                recipient_id=user_id,
                template_name=f"ISSUE_ASSIGNED.{channel}.en",
                delivery_method=channel,
                notification_type="ISSUE_ASSIGNED",
                content="body",
                status="SENT",
                dedupe_key=f"test/{row_id}",
                issue_id="ISS-42",
                sent_at=sent_at or datetime.now(timezone.utc) - timedelta(minutes=5),
            )
        )
    return row_id


async def tracked(db, queue_id: uuid.UUID, link: str = "issue", target: str = TARGET) -> str:
    code = new_code()
    async with db.begin() as session:
        await session.execute(insert(TrackedLinkRow).values(code=code, queue_id=queue_id, link=link, target=target))
    return code


async def events(db, queue_id: uuid.UUID | None = None) -> dict[str, EngagementEventRow]:
    async with db() as session:
        query = select(EngagementEventRow)
        if queue_id is not None:
            query = query.where(EngagementEventRow.queue_id == queue_id)
        return {e.kind: e for e in await session.scalars(query)}


async def test_a_link_clicked_twice_is_one_click_counted_twice(api, db):
    await add_users(db, person("u-1"))
    row = await queue_row(db)
    code = await tracked(db, row)
    assert len(code) >= 16  # ≥ 64 random bits, url-safe
    for _ in range(2):
        answer = await api.get(f"/r/{code}")
        assert answer.status_code == 302 and answer.headers["location"] == TARGET
    clicked = (await events(db, row))["CLICKED"]
    assert (clicked.count, clicked.detail, clicked.recipient_id, clicked.channel) == (
        2,
        {"link": "issue"},
        "u-1",
        "EMAIL",
    )
    assert clicked.last_at >= clicked.occurred_at
    assert list(await events(db)) == ["CLICKED"]


async def test_unknown_codes_are_a_404_page_and_record_nothing(api, db):
    await add_users(db, person("u-1"))
    row = await queue_row(db)
    pixel = await tracked(db, row, OPEN_PIXEL, "")
    gone_row = await queue_row(db)
    gone = await tracked(db, gone_row)
    async with db.begin() as session:  # the row is gone (retention): its codes with it
        await session.execute(NotificationQueueRow.__table__.delete().where(NotificationQueueRow.id == gone_row))
    for code in (new_code(), pixel, gone, "x" * 500):
        answer = await api.get(f"/r/{code}")
        assert answer.status_code == 404, code
        assert answer.headers["content-type"].startswith("text/html") and "does not work" in answer.text
    assert await events(db) == {}


async def test_the_query_string_cannot_change_the_target(api, db):
    await add_users(db, person("u-1"))
    code = await tracked(db, await queue_row(db))
    for query in ("?url=https://evil.example", "?target=//evil.example&next=https://evil.example", "?redirect=x"):
        answer = await api.get(f"/r/{code}{query}")
        assert answer.status_code == 302 and answer.headers["location"] == TARGET


async def test_opens_are_off_by_default(api, db):
    await add_users(db, person("u-1"))
    code = await tracked(db, await queue_row(db), OPEN_PIXEL, "")
    assert (await api.get(f"/o/{code}.gif")).status_code == 404
    assert await events(db) == {}


async def test_opens_when_tracked_and_machine_opens_flagged(api_settings, db):
    await add_users(db, person("u-1"))
    human_row, proxy_row = await queue_row(db), await queue_row(db)
    just_sent = await queue_row(db, sent_at=datetime.now(timezone.utc))
    codes = {row: await tracked(db, row, OPEN_PIXEL, "") for row in (human_row, proxy_row, just_sent)}
    link_code = await tracked(db, human_row)
    app = create_app(api_settings.model_copy(update={"track_opens": True, "machine_open_seconds": 30}))
    safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
    async with asgi_client(app) as client:
        opened = await client.get(f"/o/{codes[human_row]}.gif", headers={"user-agent": safari})
        assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif"
        assert opened.content.startswith(b"GIF89a")
        gmail = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
        assert (await client.get(f"/o/{codes[proxy_row]}.gif", headers={"user-agent": gmail})).status_code == 200
        assert (await client.get(f"/o/{codes[just_sent]}.gif", headers={"user-agent": safari})).status_code == 200
        assert (await client.get(f"/o/{codes[proxy_row]}.gif", headers={"user-agent": safari})).status_code == 200
        assert (await client.get(f"/o/{link_code}.gif")).status_code == 404  # a link's code is no pixel
        assert (await client.get(f"/o/{new_code()}.gif")).status_code == 404
    assert (await events(db, human_row))["OPENED"].detail == {"machine": False}
    assert (await events(db, just_sent))["OPENED"].detail == {"machine": True}
    proxy = (await events(db, proxy_row))["OPENED"]
    assert proxy.count == 2 and proxy.detail["machine"] is True and "human_at" in proxy.detail


async def inbox_row(db, user_id: str) -> tuple[str, uuid.UUID]:
    queue_id = await queue_row(db, user_id=user_id, channel="IN_APP")
    inbox_id = uuid.uuid4()
    async with db.begin() as session:
        await session.execute(
            insert(InAppNotificationRow).values(
                id=inbox_id,
                user_id=user_id,
                queue_id=queue_id,
                notification_type="ISSUE_ASSIGNED",
                issue_id="ISS-42",
                title="t",
                body="b",
                link=TARGET,
            )
        )
    return str(inbox_id), queue_id


async def test_seen_only_for_the_callers_own_rows(api, db):
    await add_users(db, person("u-1"), person("u-2"))
    mine, my_queue = await inbox_row(db, "u-1")
    theirs, their_queue = await inbox_row(db, "u-2")
    answer = await api.post(f"{INBOX}/seen", headers=bearer("u-1"), json={"ids": [mine, theirs, str(uuid.uuid4())]})
    assert answer.status_code == 200 and answer.json() == {"recorded": 1}
    again = await api.post(f"{INBOX}/seen", headers=bearer("u-1"), json={"ids": [mine]})
    assert again.json() == {"recorded": 1}
    seen = (await events(db, my_queue))["SEEN"]
    assert (seen.count, seen.channel, seen.recipient_id) == (2, "IN_APP", "u-1")
    assert await events(db, their_queue) == {}
    assert (await api.post(f"{INBOX}/seen", json={"ids": [mine]})).status_code == 401


async def test_read_archive_read_all_and_view_issue_are_recorded(api, db):
    await add_users(db, person("u-1"), person("u-2"))
    (read, read_q), (archived, archived_q), (rest, rest_q), (clicked, clicked_q) = [
        await inbox_row(db, "u-1") for _ in range(4)
    ]
    me = bearer("u-1")
    assert (await api.post(f"{INBOX}/{read}/read", headers=me)).status_code == 200
    assert (await api.post(f"{INBOX}/{archived}/archive", headers=me)).status_code == 200
    click = await api.post(f"{INBOX}/{clicked}/click", headers=me)
    assert click.status_code == 200 and click.json()["link"] == TARGET and click.json()["read_at"]
    assert (await api.post(f"{INBOX}/read-all", headers=me)).json()["marked_read"] == 1  # rest (archived is not unread)
    assert (await api.post(f"{INBOX}/{clicked}/click", headers=bearer("u-2"))).status_code == 404
    assert set(await events(db, read_q)) == {"READ"}
    assert set(await events(db, archived_q)) == {"ARCHIVED"}
    assert set(await events(db, rest_q)) == {"READ"}
    assert set(await events(db, clicked_q)) == {"CLICKED", "READ"}
    assert (await events(db, clicked_q))["CLICKED"].detail == {"link": "issue"}


async def test_one_click_unsubscribe_records_on_its_row_and_old_links_still_work(api, db):
    await add_users(db, person("u-1"))
    row = await queue_row(db)
    with_row = make_unsubscribe_token(JWT_SECRET, UnsubscribeRequest("u-1", "ISSUE_ASSIGNED", "EMAIL", str(row)))
    assert (await api.post(f"/api/v1/notifications/unsubscribe/{with_row}")).status_code == 200
    assert set(await events(db, row)) == {"UNSUBSCRIBED"}
    old = make_unsubscribe_token(JWT_SECRET, UnsubscribeRequest("u-1", "ISSUE_CREATED", "EMAIL"))
    assert (await api.post(f"/api/v1/notifications/unsubscribe/{old}")).status_code == 200
    assert len(await events(db)) == 1


async def test_operators_see_engagement_in_the_queue_why_and_metrics(api, db):
    await add_users(db, person("u-1"))
    row = await queue_row(db)
    code = await tracked(db, row)
    assert (await api.get(f"/r/{code}")).status_code == 302
    async with db.begin() as session:
        await record_engagement(session, row, "BOUNCED", detail={"status": "5.1.1"})
        await record_engagement(session, row, "OPENED", detail={"machine": True})
    items = (await api.get("/api/v1/notifications/queue", headers=ADMIN)).json()["items"]
    [item] = [i for i in items if i["id"] == str(row)]
    assert {e["kind"]: e["count"] for e in item["engagement"]} == {"CLICKED": 1, "BOUNCED": 1, "OPENED": 1}
    why = await api.get("/api/v1/notifications/why", headers=ADMIN, params={"issue_id": "ISS-42", "user_id": "u-1"})
    kinds = {e["kind"] for ev in why.json()["events"] for d in ev["decisions"] for e in d["engagement"]}
    assert kinds == {"CLICKED", "BOUNCED", "OPENED"}
    metrics = (await api.get("/metrics")).text
    assert 'notiflow_engagement_events{channel="EMAIL",kind="CLICKED",machine="false"} 1.0' in metrics
    assert 'notiflow_engagement_events{channel="EMAIL",kind="OPENED",machine="true"} 1.0' in metrics
