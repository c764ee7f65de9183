"""Wrapped links in real mail: a pipeline run on the Temporal dev server, a worker, PostgreSQL and the SMTP
catcher; the link in the mail then followed through the API."""

from __future__ import annotations

import re

from sqlalchemy import select

from notiflow.client import NotificationClient
from notiflow.models import EngagementEventRow, NotificationQueueRow, TrackedLinkRow
from notiflow.runs import DeliveryOutcome
from notiflow.settings import Settings
from programs.api.app import create_app
from tests.api.helpers import asgi_client
from tests.conftest import running_worker
from tests.factories import ADMIN_EN, ASSIGNEE, DIRECTORY, event, issue_dict, ref

WRAPPED = re.compile(r"(https?://[^\s\"<>]+)/r/([A-Za-z0-9_-]{16,})")


async def assign(temporal_client, settings: Settings, smtp):
    """An ISSUE_ASSIGNED (MEDIUM: not critical, so the mail has an unsubscribe link) through a worker with
    ``settings``; the assignee's mail and its EMAIL queue row."""
    async with running_worker(temporal_client, settings):
        nc = NotificationClient(temporal_client, settings)
        await nc.sync_users(DIRECTORY)
        evt = event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(ASSIGNEE), priority="MEDIUM"), actor=ADMIN_EN)
        handle = nc.temporal.get_workflow_handle(await nc.publish(evt), result_type=DeliveryOutcome)
        assert (await handle.result()).channels["EMAIL"].sent >= 1
    mails = await smtp.wait_for(1)
    [mail] = [m for m in mails if m.rcpt_tos[0] == ASSIGNEE.email]
    return evt, mail


async def email_row(db, event_id: str) -> NotificationQueueRow:
    async with db() as session:
        return (
            await session.scalars(
                select(NotificationQueueRow).where(
                    NotificationQueueRow.event_id == event_id,
                    NotificationQueueRow.recipient_id == ASSIGNEE.id,
                    NotificationQueueRow.delivery_method == "EMAIL",
                )
            )
        ).one()


async def test_mail_links_go_through_r_and_the_unsubscribe_link_stays_raw(temporal_client, settings, smtp, db):
    evt, mail = await assign(temporal_client, settings, smtp)
    raw = f"http://tracker.test/admin/issues/{evt.issue.id}"
    plain, html = mail.part("plain"), mail.part("html")
    assert raw not in plain and raw not in html
    codes = {m.group(2) for m in WRAPPED.finditer(plain + html)}
    assert len(codes) == 1 and all(m.group(1) == settings.public_api_url for m in WRAPPED.finditer(plain))
    [code] = codes
    assert f'href="{settings.public_api_url}/r/{code}"' in html  # the layout's button too

    row = await email_row(db, evt.event_id)
    unsubscribe = row.context_data["unsubscribe_url"]
    assert unsubscribe and "/r/" not in unsubscribe and unsubscribe in plain  # never wrapped
    assert mail.message["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert row.context_data["link"] == raw  # the raw link kept for digests and operators
    async with db() as session:
        link = await session.get(TrackedLinkRow, code)
    assert link is not None and (link.queue_id, link.link, link.target) == (row.id, "issue", raw)
    assert "/o/" not in html  # opens are off by default

    async with asgi_client(create_app(settings)) as api:
        answer = await api.get(f"/r/{code}")
    assert answer.status_code == 302 and answer.headers["location"] == raw
    async with db() as session:
        [clicked] = (await session.scalars(select(EngagementEventRow))).all()
    assert (clicked.queue_id, clicked.kind, clicked.recipient_id, clicked.channel) == (
        row.id,
        "CLICKED",
        ASSIGNEE.id,
        "EMAIL",
    )


async def test_track_clicks_off_keeps_raw_links(temporal_client, settings, smtp, db):
    evt, mail = await assign(temporal_client, settings.model_copy(update={"track_clicks": False}), smtp)
    raw = f"http://tracker.test/admin/issues/{evt.issue.id}"
    assert raw in mail.part("plain") and f'href="{raw}"' in mail.part("html")
    assert not WRAPPED.search(mail.part("plain") + mail.part("html"))
    async with db() as session:
        assert (await session.scalars(select(TrackedLinkRow))).all() == []


async def test_opens_tracked_add_a_pixel_to_html_mail_only(temporal_client, settings, smtp, db):
    evt, mail = await assign(temporal_client, settings.model_copy(update={"track_opens": True}), smtp)
    html = mail.part("html")
    [pixel] = re.findall(r'<img src="([^"]+/o/[A-Za-z0-9_-]{16,}\.gif)"', html)
    assert "/o/" not in mail.part("plain")
    code = pixel.rsplit("/", 1)[1].removesuffix(".gif")
    row = await email_row(db, evt.event_id)
    async with db() as session:
        link = await session.get(TrackedLinkRow, code)
    assert link is not None and (link.queue_id, link.link) == (row.id, "open")
