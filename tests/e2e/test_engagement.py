"""The bell's engagement reports in headless Chromium, against the real stack (issue 17): opening the dropdown
on /demo records SEEN on the notification's queue row; "Voir le ticket" (View issue) records CLICKED (and READ)
while the browser follows the link — the report is a keepalive fetch, so the navigation does not cancel it.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy import select

from notiflow.models import EngagementEventRow, InAppNotificationRow
from tests.e2e.conftest import screenshot_dir, token
from tests.e2e.test_browser import bell, publish_assignment, wait_for_rows


async def wait_for_engagement(db, queue_id, kind: str, timeout: float = 10.0) -> EngagementEventRow:
    deadline = time.monotonic() + timeout
    while True:
        async with db() as session:
            row = await session.scalar(
                select(EngagementEventRow).where(
                    EngagementEventRow.queue_id == queue_id, EngagementEventRow.kind == kind
                )
            )
        if row is not None:
            return row
        assert time.monotonic() < deadline, f"no {kind} engagement recorded on queue row {queue_id}"
        await asyncio.sleep(0.1)


async def queue_engagement(api_url: str, issue_id: str, queue_id) -> dict[str, dict]:
    """The in-app row's engagement as the console's Queue page reads it (GET /notifications/queue)."""
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as client:
        response = await client.get(
            "/api/v1/notifications/queue",
            params={"issue_id": issue_id, "channel": "IN_APP"},
            headers={"Authorization": f"Bearer {token('u-admin', 'admin')}"},
        )
    assert response.status_code == 200, response.text
    (item,) = [i for i in response.json()["items"] if i["id"] == str(queue_id)]
    return {e["kind"]: e for e in item["engagement"]}


async def test_opening_the_bell_records_seen_once_and_view_issue_records_clicked(stack, page, db):
    event = await publish_assignment(stack.url, title="Lecteur de badges en panne")
    issue_id = event["issue"]["id"]
    (stored,) = await wait_for_rows(db, InAppNotificationRow, issue_id=issue_id, user_id="u-agent")
    assert stored.queue_id is not None and stored.link

    await open_demo_with_unread(page, stack.url)
    async with db() as session:
        assert (await session.scalars(select(EngagementEventRow).filter_by(queue_id=stored.queue_id))).all() == []

    # Opening the dropdown reports what it shows: SEEN on that row.
    await bell(page, 1).click()
    dialog = page.get_by_role("dialog", name="Notifications")
    item = dialog.get_by_role("listitem").filter(has_text=issue_id)
    await item.wait_for()
    seen = await wait_for_engagement(db, stored.queue_id, "SEEN")
    assert seen.count == 1 and seen.recipient_id == "u-agent" and seen.channel == "IN_APP"
    assert (await queue_engagement(stack.url, issue_id, stored.queue_id))["SEEN"]["count"] == 1

    # Closed and opened again: the same item is not reported twice in this page's session.
    await page.keyboard.press("Escape")
    await bell(page, 1).click()
    await item.wait_for()
    await page.wait_for_timeout(500)
    async with db() as session:
        again = await session.scalar(select(EngagementEventRow).filter_by(queue_id=stored.queue_id, kind="SEEN"))
    assert again is not None and again.count == 1
    async with db() as session:
        assert (await session.get(InAppNotificationRow, stored.id)).read_at is None  # seen is not read

    # "View issue": the browser follows the notification's link (the tracker, answered here), and the bell's
    # keepalive report arrives anyway: CLICKED, and the notification is read.
    await page.route(stored.link, lambda route: route.fulfill(body="<h1>the issue</h1>", content_type="text/html"))
    await page.screenshot(path=screenshot_dir() / "demo-engagement.png")
    await item.get_by_role("link", name="Voir le ticket").click()
    await page.wait_for_url(stored.link)
    clicked = await wait_for_engagement(db, stored.queue_id, "CLICKED")
    assert clicked.detail == {"link": "issue"}
    await wait_for_engagement(db, stored.queue_id, "READ")
    async with db() as session:
        assert (await session.get(InAppNotificationRow, stored.id)).read_at is not None
    kinds = await queue_engagement(stack.url, issue_id, stored.queue_id)
    assert {"SEEN", "READ", "CLICKED"} <= set(kinds), kinds


async def open_demo_with_unread(page, api_url: str) -> None:
    await page.goto(f"{api_url}/demo?token={token('u-agent')}")
    await bell(page, 1).wait_for(timeout=10_000)
