"""The SLACK provider: a Block Kit message to an incoming-webhook URL (https://api.slack.com/messaging/webhooks).

Blocks: a header (the issue id and title), a section saying what happened with
fields for priority, status and assignee, and a button that opens the issue.
CRITICAL (a critical type, or a CRITICAL issue) is emphasised: a siren in the
header, a warning line, the button styled ``danger``. Slack answers 200 ``ok``;
its errors (400 ``invalid_payload``, 403 ``invalid_token``, 404 ``no_service``,
410 ``channel_is_archived``) are judged as for any hook.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from activities.delivery.providers.base import OutgoingMessage
from activities.delivery.providers.hooks import HookProvider, event_body, type_label
from notiflow.contracts import Channel
from notiflow.models import WebhookSubscriptionRow

#: Block Kit limits: header text, section text, field text, button text.
HEADER_CHARS, SECTION_CHARS, FIELD_CHARS, BUTTON_CHARS = 150, 3000, 2000, 75


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> str:
    """Slack's three control characters, escaped (a title cannot ping @channel or forge a link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _person(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("name") or value.get("id") or "—"
    return "Unassigned"


def slack_message(body: dict[str, Any]) -> dict[str, Any]:
    issue = body.get("issue") or {}
    critical = bool(body.get("critical"))
    what = type_label(body["type"])
    title = f"{issue.get('id', '')} · {issue.get('title', '')}".strip(" ·") or what
    header = f"🚨 CRITICAL · {title}" if critical else title
    summary = f"*{_mrkdwn(what)}*"
    if issue.get("description"):
        summary += f"\n{_mrkdwn(issue['description'])}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(header, HEADER_CHARS), "emoji": True}},
    ]
    if critical:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": ":rotating_light: *Critical: needs attention now*"}],
            }
        )
    blocks.append(
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut(summary, SECTION_CHARS)},
            "fields": [
                {
                    "type": "mrkdwn",
                    "text": _cut(f"*Priority*\n{_mrkdwn(str(issue.get('priority') or '—'))}", FIELD_CHARS),
                },
                {"type": "mrkdwn", "text": _cut(f"*Status*\n{_mrkdwn(str(issue.get('status') or '—'))}", FIELD_CHARS)},
                {"type": "mrkdwn", "text": _cut(f"*Assignee*\n{_mrkdwn(_person(issue.get('assignee')))}", FIELD_CHARS)},
            ],
        }
    )
    if body.get("link"):
        button = {
            "type": "button",
            "action_id": "open_issue",
            "url": body["link"],
            "text": {"type": "plain_text", "text": _cut("Open issue", BUTTON_CHARS)},
            "style": "danger" if critical else "primary",
        }
        blocks.append({"type": "actions", "elements": [button]})
    # ``text`` is what notifications and screen readers show.
    return {"text": _cut(f"{'CRITICAL · ' if critical else ''}{what}: {title}", SECTION_CHARS), "blocks": blocks}


class SlackProvider(HookProvider):
    channel = Channel.SLACK
    kind_name = "Slack"

    def request(
        self, subscription: WebhookSubscriptionRow, message: OutgoingMessage, sent_at: datetime
    ) -> tuple[bytes, dict[str, str]]:
        payload = slack_message(event_body(message))
        return json.dumps(payload, ensure_ascii=False).encode(), {"content-type": "application/json"}
