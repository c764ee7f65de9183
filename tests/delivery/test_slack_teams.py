"""Slack and Teams end to end: receivers that refuse what Slack and Teams would refuse.

The Slack receiver checks Block Kit as Slack does for incoming webhooks (known block
types, a plain-text header of at most 150 characters, at most 10 fields of at most
2,000, buttons with plain text, an http(s) URL and a style Slack knows) and answers
``ok``; the Teams receiver checks the message envelope and the Adaptive Card (content
type, version 1.5, elements and their required fields) and answers 202 with an empty
body, as Teams does.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from notiflow.client import NotificationClient
from notiflow.models import NotificationQueueRow, WebhookSubscriptionRow
from notiflow.runs import DeliveryOutcome
from tests.delivery.hook_receiver import Received, Receiver, Reply
from tests.factories import ASSIGNEE, DIRECTORY, event, issue_dict, ref

SLACK_BLOCKS = {"header", "section", "context", "actions", "divider"}
CARD_ELEMENTS = {"TextBlock", "FactSet", "Container", "ColumnSet", "Image"}


def slack_problem(request: Received) -> str | None:
    payload = request.json()
    blocks = payload.get("blocks")
    if not isinstance(payload.get("text"), str) or not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return "invalid_payload"
    for block in blocks:
        kind = block.get("type")
        if kind not in SLACK_BLOCKS:
            return f"invalid_blocks: unknown type {kind}"
        if kind == "header" and not (block["text"]["type"] == "plain_text" and 0 < len(block["text"]["text"]) <= 150):
            return "invalid_blocks: header"
        if kind == "section":
            fields = block.get("fields", [])
            if len(fields) > 10 or any(
                f["type"] not in ("mrkdwn", "plain_text") or len(f["text"]) > 2000 for f in fields
            ):
                return "invalid_blocks: fields"
            if "text" in block and block["text"]["type"] not in ("mrkdwn", "plain_text"):
                return "invalid_blocks: section text"
        if kind == "actions":
            for button in block["elements"]:
                if (
                    button["type"] != "button"
                    or button["text"]["type"] != "plain_text"
                    or not button["url"].startswith(("http://", "https://"))
                    or button.get("style", "primary") not in ("primary", "danger")
                    or len(button["text"]["text"]) > 75
                ):
                    return "invalid_blocks: button"
    return None


def card_problem(request: Received) -> str | None:
    message = request.json()
    if message.get("type") != "message" or not message.get("attachments"):
        return "not a message with attachments"
    attachment = message["attachments"][0]
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return "not an Adaptive Card"
    card = attachment["content"]
    if card.get("type") != "AdaptiveCard" or card.get("version") != "1.5" or not isinstance(card.get("body"), list):
        return "card type, version or body"

    def elements_ok(items) -> bool:
        for item in items:
            if item.get("type") not in CARD_ELEMENTS:
                return False
            if item["type"] == "TextBlock" and not isinstance(item.get("text"), str):
                return False
            if item["type"] == "FactSet" and not all(
                isinstance(f.get("title"), str) and isinstance(f.get("value"), str) for f in item.get("facts", [])
            ):
                return False
            if item["type"] == "Container" and not elements_ok(item.get("items", [])):
                return False
        return True

    if not elements_ok(card["body"]):
        return "card element"
    for action in card.get("actions", []):
        if action.get("type") != "Action.OpenUrl" or not action.get("url") or not action.get("title"):
            return "card action"
    return None


def judged(problem) -> callable:
    def check(request: Received) -> Reply | None:
        wrong = problem(request)
        return Reply(400, wrong.encode()) if wrong else None

    return check


@pytest.fixture
async def nc(temporal_client, settings, worker) -> NotificationClient:
    client = NotificationClient(temporal_client, settings)
    await client.sync_users(DIRECTORY)
    return client


async def _subscribe(db, kind: str, url: str) -> str:
    async with db.begin() as session:
        row = WebhookSubscriptionRow(
            name=kind, channel=kind, url=url, notification_types=["ISSUE_CREATED", "HIGH_PRIORITY_ISSUE"]
        )
        session.add(row)
        await session.flush()
        return str(row.id)


async def test_slack_block_kit_and_a_teams_adaptive_card_with_critical_emphasis(nc, db):
    async with (
        Receiver(check=judged(slack_problem)) as slack,
        Receiver(check=judged(card_problem), default=Reply(202, b"")) as teams,
    ):
        await _subscribe(db, "SLACK", slack.url("/services/T0/B0/x"))
        await _subscribe(db, "TEAMS", teams.url("/webhookb2/abc"))

        for priority in ("CRITICAL", "MEDIUM"):
            evt = event("ISSUE_CREATED", issue=issue_dict(priority=priority, assignee=ref(ASSIGNEE)))
            handle = nc.temporal.get_workflow_handle(await nc.publish(evt), result_type=DeliveryOutcome)
            outcome = await handle.result()
            assert outcome.channels["SLACK"].sent == 1 and outcome.channels["TEAMS"].sent == 1, outcome

        assert slack.answers == [200, 200] and teams.answers == [202, 202]  # the receivers took both shapes
        critical, medium = (r.json() for r in slack.requests)
        header = critical["blocks"][0]["text"]["text"]
        assert header.startswith("🚨 CRITICAL") and "Licence card printer offline" in header
        fields = " ".join(f["text"] for b in critical["blocks"] if b["type"] == "section" for f in b["fields"])
        assert "*Priority*\nCRITICAL" in fields and "*Status*\nOPEN" in fields and "Rakoto Andry" in fields
        [button] = [e for b in critical["blocks"] if b["type"] == "actions" for e in b["elements"]]
        # wrapped: GET /r/{code} on the API (NOTIFLOW_TRACK_CLICKS), a code per row
        assert button["style"] == "danger" and button["url"].startswith(f"{nc.settings.public_api_url}/r/")
        assert not medium["blocks"][0]["text"]["text"].startswith("🚨")
        assert [e["style"] for b in medium["blocks"] if b["type"] == "actions" for e in b["elements"]] == ["primary"]

        critical_card, medium_card = (r.json()["attachments"][0]["content"] for r in teams.requests)
        assert critical_card["body"][0]["type"] == "Container" and critical_card["body"][0]["style"] == "attention"
        facts = {
            f["title"]: f["value"] for item in critical_card["body"] if item["type"] == "FactSet" for f in item["facts"]
        }
        assert facts == {"Priority": "CRITICAL", "Status": "OPEN", "Assignee": "Rakoto Andry"}
        assert critical_card["actions"][0]["url"].startswith(f"{nc.settings.public_api_url}/r/")
        assert critical_card["actions"][0]["url"] != button["url"]  # the Teams row has its own code
        assert medium_card["body"][0]["type"] == "TextBlock"  # no attention container

    async with db() as session:
        rows = (
            await session.scalars(
                select(NotificationQueueRow).where(NotificationQueueRow.delivery_method.in_(["SLACK", "TEAMS"]))
            )
        ).all()
    assert {(r.delivery_method, r.status, r.notification_type) for r in rows} == {
        ("SLACK", "SENT", "HIGH_PRIORITY_ISSUE"),
        ("TEAMS", "SENT", "HIGH_PRIORITY_ISSUE"),
        ("SLACK", "SENT", "ISSUE_CREATED"),
        ("TEAMS", "SENT", "ISSUE_CREATED"),
    }


async def test_a_receiver_refusing_the_payload_fails_the_row_with_its_words(nc, db):
    async with Receiver(default=Reply(400, b"invalid_blocks")) as slack:
        subscription = await _subscribe(db, "SLACK", slack.url())
        await nc.temporal.get_workflow_handle(
            await nc.publish(event("ISSUE_CREATED")), result_type=DeliveryOutcome
        ).result()
    async with db() as session:
        [row] = (
            await session.scalars(select(NotificationQueueRow).where(NotificationQueueRow.address == subscription))
        ).all()
    assert row.status == "FAILED" and "HTTP 400 invalid_blocks" in row.error_message and len(slack.requests) == 1
