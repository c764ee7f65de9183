"""What webhooks, Slack and Teams share: a subscription looked up at send time, one checked JSON POST, its answer.

A queue row of these channels is addressed to a subscription (``address`` = its id,
no recipient) and its ``content`` is the event's JSON body (``subscription_rows`` in
``activities/delivery/planning.py``). At send time the provider reads the subscription
(so a deactivation, a new URL or a rotated secret applies at once), builds the request
its receiver expects from that body, and POSTs it through the SSRF guard
(``notiflow.outbound``): a refused destination is a permanent failure, an unreachable
one a transient one.

Answers: 2xx delivered; 429, 5xx and timeouts retried (not before ``Retry-After``);
410 Gone switches the subscription off (recorded with the reason and in the audit
log) and fails the row; a redirect is not followed and fails the row, as any other 4xx.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.delivery.providers.base import OutgoingMessage, PermanentDeliveryError, Receipt, TransientDeliveryError
from notiflow.audit import record_audit
from notiflow.contracts import Channel
from notiflow.models import WebhookSubscriptionRow
from notiflow.outbound import OutboundClient, OutboundRefused, OutboundResponse, OutboundUnavailable
from notiflow.settings import Settings

#: Requests in flight per channel and worker.
HOOK_CONCURRENCY = 10
#: How much of a receiver's answer is kept in an error message.
ANSWER_CHARS = 300
#: The audit log's actor for what the worker does on its own.
SYSTEM_ACTOR = "notiflow"


class Subscriptions:
    """Read and deactivate subscriptions from the worker (shared by the three providers)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, subscription_id: str) -> WebhookSubscriptionRow | None:
        try:
            key = uuid.UUID(subscription_id)
        except ValueError:
            return None
        async with self.sessions() as session:
            return await session.get(WebhookSubscriptionRow, key)

    async def deactivate(self, subscription_id: uuid.UUID, reason: str) -> None:
        async with self.sessions.begin() as session:
            changed = await session.execute(
                update(WebhookSubscriptionRow)
                .where(WebhookSubscriptionRow.id == subscription_id, WebhookSubscriptionRow.is_active)
                .values(is_active=False, deactivated_reason=reason, updated_at=datetime.now(timezone.utc))
            )
            if changed.rowcount:  # type: ignore[attr-defined]
                await record_audit(
                    session,
                    actor=SYSTEM_ACTOR,
                    action="webhook.deactivate",
                    target=str(subscription_id),
                    details={"reason": reason},
                )


def event_body(message: OutgoingMessage) -> dict[str, Any]:
    """The row's JSON body (as planned), for the providers that reshape it."""
    return json.loads(message.text)


def type_label(notification_type: str) -> str:
    """``HIGH_PRIORITY_ISSUE`` → ``High priority issue``."""
    return notification_type.replace("_", " ").capitalize()


class HookProvider:
    """One POST per row to the subscription's URL; subclasses say what to send."""

    channel: Channel
    kind_name: str = "webhook"

    def __init__(self, settings: Settings, subscriptions: Subscriptions) -> None:
        self.settings = settings
        self.subscriptions = subscriptions
        self.concurrency = HOOK_CONCURRENCY
        self.http = OutboundClient(settings.outbound_allowlist, timeout=settings.outbound_timeout_seconds)

    def request(
        self, subscription: WebhookSubscriptionRow, message: OutgoingMessage, sent_at: datetime
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers for this receiver."""
        raise NotImplementedError

    async def send(self, message: OutgoingMessage, *, sent_at: datetime) -> Receipt:
        subscription = await self.subscriptions.get(message.address)
        if subscription is None:
            raise PermanentDeliveryError(f"{self.kind_name} subscription {message.address} was deleted")
        if not subscription.is_active:
            why = f": {subscription.deactivated_reason}" if subscription.deactivated_reason else ""
            raise PermanentDeliveryError(f"{self.kind_name} subscription {subscription.id} is inactive{why}")
        if subscription.channel != self.channel:
            raise PermanentDeliveryError(
                f"subscription {subscription.id} is now a {subscription.channel}, not a {self.channel}"
            )
        body, headers = self.request(subscription, message, sent_at)
        try:
            answer = await self.http.request("POST", subscription.url, content=body, headers=headers)
        except OutboundRefused as exc:
            raise PermanentDeliveryError(f"{self.kind_name} URL refused: {exc}") from None
        except OutboundUnavailable as exc:
            raise TransientDeliveryError(f"{self.kind_name} receiver unreachable: {exc}") from None
        return await self._judge(subscription, message, answer)

    async def _judge(
        self, subscription: WebhookSubscriptionRow, message: OutgoingMessage, answer: OutboundResponse
    ) -> Receipt:
        status = answer.status_code
        said = f"HTTP {status}" + (f" {answer.text.strip()[:ANSWER_CHARS]}" if answer.text.strip() else "")
        if 200 <= status < 300:
            return Receipt(provider_message_id=self.message_id(message, answer), response=said)
        if status == 429 or status >= 500:
            raise TransientDeliveryError(f"{self.kind_name} receiver answered {said}", retry_after=answer.retry_after())
        if status == 410:
            reason = f"the receiver answered 410 Gone at {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
            await self.subscriptions.deactivate(subscription.id, reason)
            raise PermanentDeliveryError(
                f"{self.kind_name} receiver answered {said}; subscription deactivated", invalid_address=True
            )
        if 300 <= status < 400:
            where = answer.headers.get("location", "")
            raise PermanentDeliveryError(
                f"{self.kind_name} receiver answered {status} redirect{' to ' + where[:200] if where else ''}; "
                "redirects are not followed: save the final URL"
            )
        raise PermanentDeliveryError(f"{self.kind_name} receiver refused it: {said}")

    def message_id(self, message: OutgoingMessage, answer: OutboundResponse) -> str:
        return message.queue_id

    async def close(self) -> None:
        await self.http.aclose()
