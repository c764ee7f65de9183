"""The bell's engagement reports in headless Chromium, against the real stack (issue 17): opening the dropdown
on /demo records SEEN on the notification's queue row; "Voir le ticket" (View issue) records CLICKED (and READ)
while the browser follows the link — the report is a keepalive fetch, so the navigation does not cancel it.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy import select, text

from notiflow.models import EngagementEventRow, InAppNotificationRow, ReadEscalationRow
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


@pytest.fixture
async def restore_read_escalations(db):
    """Escalation-on-unread rules outlive ``db``'s truncation (seeded by the migration): put them back."""
    async with db.begin() as session:
        seeded = (await session.execute(text("SELECT * FROM read_escalations"))).mappings().all()
    yield
    async with db.begin() as session:
        await session.execute(text("DELETE FROM read_escalations"))
        for row in seeded:
            await session.execute(ReadEscalationRow.__table__.insert().values(**row))


async def test_console_shows_engagement_in_the_queue_and_edits_an_escalation_on_unread(
    stack, page, db, restore_read_escalations
):
    event = await publish_assignment(stack.url)
    issue_id = event["issue"]["id"]
    (stored,) = await wait_for_rows(db, InAppNotificationRow, issue_id=issue_id, user_id="u-agent")
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        response = await client.post(
            "/api/v1/notifications/inbox/seen",
            json={"ids": [str(stored.id)]},
            headers={"Authorization": f"Bearer {token('u-agent')}"},
        )
    assert response.json() == {"recorded": 1}

    await page.goto(f"{stack.url}/admin#/policies")
    await page.get_by_label("Token").fill(token("u-admin", "admin"))
    await page.get_by_role("button", name="Sign in").click()

    # Policies, "Escalation on unread": the API's message beside the minutes, then a valid rule saved.
    section = page.get_by_role("region", name="Escalation on unread")
    line = section.get_by_role("form", name="Escalation on unread, ISSUE_ASSIGNED")
    switch = line.get_by_role("switch", name="Escalate ISSUE_ASSIGNED when unread")
    minutes = line.get_by_label("ISSUE_ASSIGNED unread after (minutes)")
    await switch.check()
    await minutes.fill("0")
    await line.get_by_role("button", name="Save ISSUE_ASSIGNED").click()
    await expect(minutes).to_have_accessible_description(re.compile("greater than 0"))
    await minutes.fill("45")
    await line.get_by_label("ISSUE_ASSIGNED also send on").select_option("EMAIL")
    await line.get_by_role("button", name="Save ISSUE_ASSIGNED").click()
    await line.get_by_role("status").filter(has_text="Saved ISSUE_ASSIGNED").wait_for()
    await expect(minutes).not_to_have_attribute("aria-invalid", "true")
    await page.screenshot(path=screenshot_dir() / "admin-read-escalations.png", full_page=True)
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        rule = (
            await client.get(
                "/api/v1/notifications/read-escalations/ISSUE_ASSIGNED",
                headers={"Authorization": f"Bearer {token('u-admin', 'admin')}"},
            )
        ).json()
    assert (rule["enabled"], rule["after_minutes"], rule["channel"]) == (True, 45, "EMAIL")

    # Queue: the in-app row's stored decision and its engagement (seen, once).
    await page.get_by_role("link", name="Queue", exact=True).click()
    await page.get_by_label("Issue", exact=True).fill(issue_id)
    await page.get_by_label("Channel", exact=True).select_option("IN_APP")
    await page.get_by_role("button", name="Filter").click()
    row = page.locator(f'tr[data-queue-id="{stored.queue_id}"]')
    await row.locator('li[data-kind="SEEN"]').wait_for()
    assert "SEND" in await row.inner_text()
    await page.screenshot(path=screenshot_dir() / "admin-queue-engagement.png", full_page=True)
    assert all("422" in e for e in page.console_errors), page.console_errors  # only the refused save
