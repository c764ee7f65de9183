"""The WEBHOOK provider: the event's JSON, signed per Standard Webhooks (https://www.standardwebhooks.com).

Headers: ``webhook-id`` (the queue row's id: the same on every retry, so a receiver
can drop duplicates), ``webhook-timestamp`` (Unix seconds at this attempt) and
``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with
the subscription's secret — and, for ``NOTIFLOW_WEBHOOK_SECRET_GRACE`` after a
rotation, a second ``v1,…`` with the previous secret, space-separated, so the
receiver can switch secrets at its own pace. Signing is the ``standardwebhooks``
library's; the tests check it with an independent implementation.
"""

from __future__ import annotations

from datetime import datetime, timezone

from standardwebhooks import Webhook

from activities.delivery.providers.base import OutgoingMessage, PermanentDeliveryError
from activities.delivery.providers.hooks import HookProvider
from notiflow.contracts import Channel
from notiflow.models import WebhookSubscriptionRow


def signing_secrets(subscription: WebhookSubscriptionRow, at: datetime) -> list[str]:
    """The current secret, then the previous one while its grace period lasts."""
    secrets = [subscription.secret] if subscription.secret else []
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires is not None and at < expires:
        secrets.append(subscription.previous_secret)
    return secrets


def signed_headers(message_id: str, body: str, secrets: list[str], at: datetime) -> dict[str, str]:
    at = datetime.fromtimestamp(int(at.timestamp()), timezone.utc)
    return {
        "content-type": "application/json",
        "user-agent": "notiflow-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets),
    }


class WebhookProvider(HookProvider):
    channel = Channel.WEBHOOK
    kind_name = "webhook"

    def request(
        self, subscription: WebhookSubscriptionRow, message: OutgoingMessage, sent_at: datetime
    ) -> tuple[bytes, dict[str, str]]:
        secrets = signing_secrets(subscription, sent_at)
        if not secrets:
            raise PermanentDeliveryError(f"webhook subscription {subscription.id} has no signing secret; rotate it")
        return message.text.encode(), signed_headers(f"msg_{message.queue_id}", message.text, secrets, sent_at)

    def message_id(self, message: OutgoingMessage, answer) -> str:
        return f"msg_{message.queue_id}"
