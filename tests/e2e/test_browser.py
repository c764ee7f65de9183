"""The demo page and the admin console in headless Chromium, against the real stack.

The demo user (u-agent) reads French, so the page speaks French: the bell is "Notifications, N non lues".
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import httpx
from playwright.async_api import expect
from sqlalchemy import select, text

from notiflow.models import InAppNotificationRow, NotificationQueueRow
from tests.e2e.conftest import screenshot_dir, token
from tests.factories import event_dict, issue_dict

DEMO_USER = {"id": "u-agent", "name": "Rakoto Andry", "email": "rakoto@example.mg", "locale": "fr"}
LEAD = {"id": "u-lead", "name": "Miora Rabe", "email": "miora.lead@example.mg", "locale": "en"}
CLERK = {"id": "u-clerk", "name": "Lalao Rina", "email": "lalao@example.mg", "locale": "en"}


def bell(page, unread: int):
    return page.get_by_role("button", name=f"Notifications, {unread} non lues", exact=True)


async def publish_assignment(api_url: str, assignee: dict = DEMO_USER, title: str | None = None) -> dict:
    """ISSUE_ASSIGNED to ``assignee`` by the lead, through POST /api/v1/events as the issue system."""
    issue = issue_dict(
        f"ISS-{uuid.uuid4().hex[:5].upper()}",
        title=title or f"Printer {uuid.uuid4().hex[:6]}",
        priority="MEDIUM",
        assignee=assignee,
    )
    event = event_dict("ISSUE_ASSIGNED", issue=issue, actor=None) | {"actor": LEAD}
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as client:
        response = await client.post(
            "/api/v1/events", json=event, headers={"Authorization": f"Bearer {token('issue-tracker', 'service')}"}
        )
    assert response.status_code == 202, response.text
    return event


async def api_unread(api_url: str) -> int:
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as client:
        response = await client.get(
            "/api/v1/notifications/inbox/unread-count", headers={"Authorization": f"Bearer {token('u-agent')}"}
        )
    return response.json()["unread_count"]


async def wait_for_rows(db, model, timeout: float = 20.0, **where) -> list:
    deadline = time.monotonic() + timeout
    while True:
        async with db() as session:
            rows = (await session.scalars(select(model).filter_by(**where))).all()
        if rows:
            return list(rows)
        assert time.monotonic() < deadline, f"no {model.__tablename__} row for {where}"
        await asyncio.sleep(0.1)


async def open_demo(page, api_url: str) -> None:
    await page.goto(f"{api_url}/demo?token={token('u-agent')}")
    await bell(page, 0).wait_for(timeout=10_000)
    # The stream is open once the count came over it (the store is live): EventSource readyState OPEN.
    await page.wait_for_timeout(300)


async def test_the_bell_counts_a_published_event_within_a_second_and_marks_it_read(stack, page, db):
    # Warm the pipeline (first workflow task, template cache) on someone else, as a running worker would be.
    await publish_assignment(stack.url, assignee=CLERK)
    await wait_for_rows(db, InAppNotificationRow, user_id="u-clerk")

    await open_demo(page, stack.url)
    assert await page.get_by_role("checkbox", name="Ticket assigné — E-mail").is_visible()  # settings shown, no click

    started = time.perf_counter()
    event = await publish_assignment(stack.url, title="Imprimante des permis hors ligne")
    await bell(page, 1).wait_for(timeout=5_000)
    elapsed = time.perf_counter() - started
    print(f"\npublish → bell: {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0, f"the bell took {elapsed:.2f} s"

    await bell(page, 1).click()
    dialog = page.get_by_role("dialog", name="Notifications")
    item = dialog.get_by_role("listitem").filter(has_text=event["issue"]["id"])
    await item.wait_for()
    (stored,) = await wait_for_rows(db, InAppNotificationRow, issue_id=event["issue"]["id"])
    assert stored.title in await item.inner_text()  # the notification's title and its issue id
    await page.screenshot(path=screenshot_dir() / "demo-dropdown.png")

    await item.get_by_role("button", name="Marquer comme lu").click()
    await bell(page, 0).wait_for(timeout=5_000)
    assert await api_unread(stack.url) == 0
    assert page.console_errors == []


async def test_a_dropped_stream_resumes_with_the_missed_item_exactly_once(stack, page, db):
    await open_demo(page, stack.url)
    await stack.stop()  # the stream drops; the browser keeps retrying the same URL
    event = await publish_assignment_while_down(stack, db)
    await stack.start()  # same port: EventSource reconnects with Last-Event-ID and the API replays the item
    await bell(page, 1).wait_for(timeout=10_000)
    await bell(page, 1).click()
    items = page.get_by_role("dialog", name="Notifications").get_by_role("listitem")
    await items.first.wait_for()
    texts = await items.all_inner_texts()
    assert sum(event["issue"]["id"] in t for t in texts) == 1, texts
    await page.wait_for_timeout(1500)  # a late duplicate (replay + NOTIFY, or a poll) would show by now
    assert sum(event["issue"]["id"] in t for t in await items.all_inner_texts()) == 1
    assert await bell(page, 1).is_visible()


async def publish_assignment_while_down(stack, db) -> dict:
    """Publish through the worker directly (the API is down): the issue system's client does the same."""
    from notiflow.client import NotificationClient
    from notiflow.contracts import parse_event
    from notiflow.temporal import connect_client

    client = await connect_client(stack.settings)
    issue = issue_dict(
        f"ISS-{uuid.uuid4().hex[:5].upper()}",
        title="Published while the API was down",
        priority="MEDIUM",
        assignee=DEMO_USER,
    )
    event = event_dict("ISSUE_ASSIGNED", issue=issue, actor=None) | {"actor": LEAD}
    await NotificationClient(client, stack.settings).publish(parse_event(event))
    await wait_for_rows(db, InAppNotificationRow, user_id="u-agent")
    return event


async def test_a_preference_persists_across_a_reload_and_a_critical_type_stays_on(stack, page):
    await page.goto(f"{stack.url}/demo")  # no token in the URL: the dev-only /demo/session signs in as u-agent
    await bell(page, 0).wait_for(timeout=10_000)
    email = page.get_by_role("checkbox", name="Ticket assigné — E-mail")
    assert await email.is_checked()
    await email.click()
    await page.get_by_role("status").filter(has_text="Enregistré").wait_for()
    await page.reload()
    await bell(page, 0).wait_for()
    assert not await page.get_by_role("checkbox", name="Ticket assigné — E-mail").is_checked()
    assert await page.get_by_role("checkbox", name="Ticket assigné — Dans l'application").is_checked()

    critical = page.get_by_role("checkbox", name="Pic d'erreurs système — E-mail")
    assert await critical.is_disabled() and await critical.is_checked()
    await critical.click(force=True)  # a disabled box ignores the click
    await page.screenshot(path=screenshot_dir() / "demo-settings.png", full_page=True)
    await page.reload()
    await bell(page, 0).wait_for()
    assert await page.get_by_role("checkbox", name="Pic d'erreurs système — E-mail").is_checked()
    async with httpx.AsyncClient(base_url=stack.url) as client:
        stored = (
            await client.get(
                "/api/v1/notifications/preferences", headers={"Authorization": f"Bearer {token('u-agent')}"}
            )
        ).json()
    cells = {(p["notification_type"], p["channel"]): p for p in stored["preferences"]}
    assert cells[("ISSUE_ASSIGNED", "EMAIL")]["enabled"] is False
    assert cells[("SYSTEM_ERROR_SPIKE", "EMAIL")]["enabled"] is True
    assert page.console_errors == []


async def test_console_template_edit_reaches_the_next_mail_and_a_failed_row_is_redelivered_once(
    stack, page, db, smtp, restore_templates
):
    await page.goto(f"{stack.url}/admin")
    await page.get_by_label("Token").fill(token("u-admin", "admin"))
    await page.get_by_role("button", name="Sign in").click()
    for name in ("Templates", "Queue", "Policies", "Analytics", "Why (not)?"):
        await page.get_by_role("link", name=name, exact=True).wait_for()

    # Templates: edit the French assignment mail, see the preview, save.
    await page.get_by_role("button", name="Edit ISSUE_ASSIGNED.EMAIL.fr").click()
    body = page.get_by_label("Text", exact=True)
    await body.fill("Bonjour {{ recipient.name }}, le ticket {{ issue.id }} vous est confié. MARQUE-E2E")
    preview = page.get_by_test_id("preview-text")
    await preview.filter(has_text="MARQUE-E2E").wait_for()
    await body.fill("{{ issue.id }} {% if %}")
    await page.locator("#template-problem").filter(has_text="line").wait_for()  # the validation error, at its line
    await body.fill("Bonjour {{ recipient.name }}, le ticket {{ issue.id }} vous est confié. MARQUE-E2E")
    await expect(page.locator("#template-problem")).to_be_empty()  # the fixed draft renders again
    await preview.filter(has_text="MARQUE-E2E").wait_for()
    await page.screenshot(path=screenshot_dir() / "admin-template.png", full_page=True)
    await page.get_by_role("button", name="Save", exact=True).click()
    await page.get_by_role("status").filter(has_text="Saved as version").wait_for()

    # The next mail uses it; the mailbox refuses it, so its row ends FAILED.
    smtp.sink.rejected[DEMO_USER["email"]] = "Mailbox full"
    event = await publish_assignment(stack.url)
    deadline = time.monotonic() + 30
    while True:
        (row,) = await wait_for_rows(
            db, NotificationQueueRow, event_id=event["event_id"], delivery_method="EMAIL", recipient_id="u-agent"
        )
        if row.status == "FAILED":
            break
        assert time.monotonic() < deadline, row.status
        await asyncio.sleep(0.2)
    assert "MARQUE-E2E" in row.content
    del smtp.sink.rejected[DEMO_USER["email"]]

    # Queue: the FAILED row, its reason, Redeliver.
    await page.get_by_role("link", name="Queue", exact=True).click()
    await page.get_by_label("Status", exact=True).select_option("FAILED")
    await page.get_by_role("button", name="Filter").click()
    failed = page.locator(f'tr[data-queue-id="{row.id}"]')
    await failed.wait_for()
    assert "Mailbox full" in await failed.inner_text()
    await page.screenshot(path=screenshot_dir() / "admin-queue.png", full_page=True)
    await failed.get_by_role("button", name="Redeliver").click()
    await failed.get_by_role("status").filter(has_text="Redelivery started").wait_for()
    await smtp.wait_for(1, timeout=20)
    await asyncio.sleep(1.5)
    mails = smtp.sink.to(DEMO_USER["email"])
    assert len(mails) == 1 and "MARQUE-E2E" in mails[0].part("plain")

    # Why (not)?: the story of that issue for that person.
    await page.goto(f"{stack.url}/admin#/why?issue_id={event['issue']['id']}&user_id=u-agent")
    await page.get_by_role("cell", name="sent", exact=True).first.wait_for()
    await page.screenshot(path=screenshot_dir() / "admin-why.png", full_page=True)
    # Analytics: the charts over the day's deliveries, and the failure reason of the row that failed.
    await page.get_by_role("link", name="Analytics", exact=True).click()
    await page.get_by_role("img", name=re.compile("^Deliveries per day by channel")).wait_for()
    await page.get_by_role("cell", name=re.compile("Mailbox full")).wait_for()
    await page.screenshot(path=screenshot_dir() / "admin-analytics.png", full_page=True)

    # The only console errors: the 422 of the preview of the broken draft (shown to the admin, as meant).
    assert all("422" in e for e in page.console_errors), page.console_errors
    async with db() as session:
        assert (
            await session.execute(text("SELECT count(*) FROM notification_queue WHERE status = 'FAILED'"))
        ).scalar() == 0


async def test_console_edits_a_policy_and_activates_an_old_template_version(
    stack, page, db, restore_policies, restore_templates
):
    admin = {"Authorization": f"Bearer {token('u-admin', 'admin')}"}
    await page.goto(f"{stack.url}/admin#/policies")
    await page.get_by_label("Token").fill(token("u-admin", "admin"))
    await page.get_by_role("button", name="Sign in").click()

    # Policies: a refused value shows the API's message beside its field; a valid one is saved with its firings.
    critical = page.get_by_role("form", name="CRITICAL")
    firings = page.get_by_role("region", name="Next firings, CRITICAL")
    await expect(firings.get_by_role("row")).to_have_count(7)  # header, due, 2 tiers, 3 repeats
    tier = critical.get_by_label("Tier 1 after (minutes)")
    await tier.fill("0")
    await critical.get_by_role("button", name="Save CRITICAL").click()
    await expect(tier).to_have_accessible_description("Input should be greater than 0")
    await tier.fill("30")
    await critical.get_by_label("Repeat the last tier (times)").fill("0")
    await critical.get_by_role("button", name="Save CRITICAL").click()
    await critical.get_by_role("status").filter(has_text="Saved CRITICAL").wait_for()
    await expect(tier).not_to_have_attribute("aria-invalid", "true")
    await expect(firings.get_by_role("row")).to_have_count(4)  # header, due, 2 tiers
    await firings.get_by_role("cell", name="270 min", exact=True).wait_for()  # due 4 h + tier 1 at 30 min
    await page.screenshot(path=screenshot_dir() / "admin-policies.png", full_page=True)
    async with httpx.AsyncClient(base_url=stack.url, headers=admin) as client:
        policies = (await client.get("/api/v1/notifications/escalation-policies")).json()
    assert (policies[0]["priority"], policies[0]["tiers"][0]["after_minutes"], policies[0]["repeat_last"]) == (
        "CRITICAL",
        30,
        0,
    )

    # Templates: save a new version, then "Activate" the old one (one-click rollback), then deactivate it.
    await page.get_by_role("link", name="Templates", exact=True).click()
    await page.get_by_role("button", name="Edit ISSUE_ASSIGNED.EMAIL.fr").click()
    await page.get_by_label("Text", exact=True).fill("{{ issue.id }} MARQUE-V2")
    await page.get_by_role("button", name="Save", exact=True).click()
    await page.get_by_role("status").filter(has_text="Saved as version 2").wait_for()
    await page.get_by_role("button", name="Activate v1").click()
    await page.get_by_role("status").filter(has_text="Version 1 is now the active version").wait_for()
    await expect(page.get_by_label("Text", exact=True)).not_to_have_value(re.compile("MARQUE-V2"))
    async with httpx.AsyncClient(base_url=stack.url, headers=admin) as client:
        params = {"notification_type": "ISSUE_ASSIGNED", "channel": "EMAIL", "locale": "fr"}
        [active] = (await client.get("/api/v1/notifications/templates", params=params)).json()
        assert active["version"] == 1
        await page.get_by_role("button", name="Deactivate v1").click()
        await page.get_by_role("status").filter(has_text="has no active version").wait_for()
        assert (await client.get("/api/v1/notifications/templates", params=params)).json() == []
    assert all("422" in e for e in page.console_errors), page.console_errors
