"""The console's Suppressions page in headless Chromium, against the real stack (issue 17): a hard bounce of a
mail notiflow sent (a real DSN through the bounce receiver's code path) appears on the page with its code, text
and the queue row it came from; an admin adds a MANUAL entry (the API's 409 beside the address when it is listed
already) and reactivates the bounced address, which the API then reports removed.
"""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from activities.bounces.compose import delivery_status_notification
from activities.bounces.queries import Received, record_report
from notiflow.models import NotificationQueueRow
from notiflow.verp import verp_code
from tests.e2e.conftest import screenshot_dir, token
from tests.e2e.test_browser import DEMO_USER, publish_assignment, wait_for_rows

ADMIN = {"Authorization": f"Bearer {token('u-admin', 'admin')}"}
SUPPRESSIONS = "/api/v1/notifications/suppressions"


async def bounce(db, row: NotificationQueueRow, settings) -> None:
    """The DSN a remote server sends back for ``row``'s mail (5.1.1), read as the receiver reads it."""
    original = f"Message-ID: <{row.id}@notiflow.test>\r\nSubject: {row.subject}\r\n\r\n{row.content}\r\n".encode()
    dsn = delivery_status_notification(
        original=original, envelope_sender=f"bounces+{verp_code(row.id)}@notiflow.test", recipient=row.address
    )
    async with db() as session, session.begin():
        await record_report(
            session,
            Received(dsn, "", f"bounces+{verp_code(row.id)}@notiflow.test", verp_code(row.id)),
            soft_bounce_limit=settings.soft_bounce_limit,
        )


async def test_console_lists_a_bounce_adds_a_manual_entry_and_reactivates_an_address(stack, page, db):
    event = await publish_assignment(stack.url)
    (row,) = await wait_for_rows(
        db, NotificationQueueRow, issue_id=event["issue"]["id"], recipient_id="u-agent", delivery_method="EMAIL"
    )
    await bounce(db, row, stack.settings)

    await page.goto(f"{stack.url}/admin#/suppressions")
    await page.get_by_label("Token").fill(token("u-admin", "admin"))
    await page.get_by_role("button", name="Sign in").click()

    # The bounce: reason, code and text, the row that caused it.
    line = page.get_by_role("row").filter(has_text=DEMO_USER["email"])
    await expect(line).to_contain_text("hard bounce")
    await expect(line).to_contain_text("5.1.1")
    await expect(line).to_contain_text(re.compile("User unknown", re.I))
    await expect(line).to_contain_text(str(row.id))
    await expect(line).to_have_attribute("data-active", "true")

    # A MANUAL entry, then the same address again: the API's 409 beside the address.
    form = page.get_by_role("form", name="Add a suppression")
    address = form.get_by_label("Address to suppress")
    await address.fill("left.company@example.mg")
    await form.get_by_label("Note").fill("left the company")
    await form.get_by_role("button", name="Suppress").click()
    await form.get_by_role("status").filter(has_text="Added EMAIL left.company@example.mg").wait_for()
    manual = page.get_by_role("row").filter(has_text="left.company@example.mg")
    await expect(manual).to_contain_text("manual")
    await expect(manual).to_contain_text("by u-admin")
    await address.fill(DEMO_USER["email"].upper())
    await form.get_by_role("button", name="Suppress").click()
    await expect(address).to_have_accessible_description(re.compile("already on the list"))
    await page.screenshot(path=screenshot_dir() / "admin-suppressions.png", full_page=True)

    # Reactivate the bounced address: removed on the page and for the API.
    await line.get_by_role("button", name=f"Reactivate {DEMO_USER['email']}").click()
    await expect(line.get_by_role("status")).to_contain_text("gets EMAIL notifications again")
    await expect(line).to_have_attribute("data-active", "false")
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        listed = (await client.get(SUPPRESSIONS, params={"address": DEMO_USER["email"]}, headers=ADMIN)).json()
    assert [(e["reason"], e["active"], e["removed_by"]) for e in listed["items"]] == [("HARD_BOUNCE", False, "u-admin")]

    # The State filter: only what is on the list now.
    await page.get_by_role("form", name="Filters").get_by_label("State").select_option("true")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_role("row").filter(has_text=DEMO_USER["email"])).to_have_count(0)
    await expect(manual).to_be_visible()
    assert all("409" in e for e in page.console_errors), page.console_errors  # only the refused duplicate
