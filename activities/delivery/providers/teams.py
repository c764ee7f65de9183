"""The TEAMS provider: a message carrying an Adaptive Card 1.5 to a Teams incoming-webhook (or Workflows) URL.

``{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"content": {"type": "AdaptiveCard", "version": "1.5", …}}]}`` with the same content as
Slack: the issue id and title, what happened, a fact set (priority, status, assignee)
and an ``Action.OpenUrl`` to the issue. CRITICAL is emphasised: an ``attention``
container with a warning line, the title in the attention colour, the action
``destructive``. Teams answers 200 (``1``) or 202 with an empty body: any 2xx is delivered.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from activities.delivery.providers.base import OutgoingMessage
from activities.delivery.providers.hooks import HookProvider, event_body, type_label
from notiflow.contracts import Channel
from notiflow.models import WebhookSubscriptionRow

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def _person(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("name") or value.get("id") or "—"
    return "Unassigned"


def teams_message(body: dict[str, Any]) -> dict[str, Any]:
    issue = body.get("issue") or {}
    critical = bool(body.get("critical"))
    what = type_label(body["type"])
    title = f"{issue.get('id', '')} · {issue.get('title', '')}".strip(" ·") or what
    heading: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": title,
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "color": "Attention" if critical else "Default",
        },
        {"type": "TextBlock", "text": what, "isSubtle": not critical, "wrap": True, "spacing": "None"},
    ]
    card_body: list[dict[str, Any]] = []
    if critical:
        card_body.append(
            {
                "type": "Container",
                "style": "attention",
                "bleed": True,
                "items": [
                    {"type": "TextBlock", "text": "🚨 CRITICAL: needs attention now", "weight": "Bolder", "wrap": True},
                    *heading,
                ],
            }
        )
    else:
        card_body.extend(heading)
    if issue.get("description"):
        card_body.append({"type": "TextBlock", "text": issue["description"], "wrap": True, "maxLines": 6})
    card_body.append(
        {
            "type": "FactSet",
            "facts": [
                {"title": "Priority", "value": str(issue.get("priority") or "—")},
                {"title": "Status", "value": str(issue.get("status") or "—")},
                {"title": "Assignee", "value": _person(issue.get("assignee"))},
            ],
        }
    )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": card_body,
        "msteams": {"width": "Full"},
    }
    if body.get("link"):
        card["actions"] = [
            {
                "type": "Action.OpenUrl",
                "title": "Open issue",
                "url": body["link"],
                "style": "destructive" if critical else "positive",
            }
        ]
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


class TeamsProvider(HookProvider):
    channel = Channel.TEAMS
    kind_name = "Teams"

    def request(
        self, subscription: WebhookSubscriptionRow, message: OutgoingMessage, sent_at: datetime
    ) -> tuple[bytes, dict[str, str]]:
        payload = teams_message(event_body(message))
        return json.dumps(payload, ensure_ascii=False).encode(), {"content-type": "application/json"}
