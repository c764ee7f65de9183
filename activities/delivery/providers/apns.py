"""Apple Push Notification service for iPhone apps: one device token per subscription (kind ``APNS``).

``POST {NOTIFLOW_APNS_URL}/3/device/{token}`` over HTTP/2 (APNs speaks nothing else: ALPN ``h2`` over TLS;
prior knowledge over the plain http of a local receiver) through the SSRF guard, with token-based
authentication: ``authorization: bearer <ES256 JWT>`` signed with the team's auth key
(``NOTIFLOW_APNS_PRIVATE_KEY``, the .p8 PEM or its path), header ``kid`` ``NOTIFLOW_APNS_KEY_ID``, claims
``iss`` ``NOTIFLOW_APNS_TEAM_ID`` and ``iat``. Apple refuses a token older than an hour and one renewed more
often than every 20 minutes, so it is cached and renewed after ``TOKEN_LIFETIME`` (50 min).

Headers: ``apns-topic`` (the bundle id, ``NOTIFLOW_APNS_TOPIC``), ``apns-push-type: alert``,
``apns-priority`` 10 for a critical notification (5 otherwise), ``apns-collapse-id`` one per issue (a newer
message about the issue replaces the older one on the phone), ``apns-expiration`` now + 24 h for a critical
one (4 h otherwise). Body: ``{"aps": {"alert": {"title", "body"}}, "link", "notification_id", "issue_id"}``.

Answers: 200 sent (``apns-id``); 410 ``Unregistered`` or 400 ``BadDeviceToken`` / ``DeviceTokenNotForTopic``
removes the subscription; 403 ``ExpiredProviderToken`` drops the cached token and is retried,
``InvalidProviderToken`` (the team id, key id or key is wrong) is permanent; 429 and 5xx are retried no sooner
than ``Retry-After``; other 4xx are permanent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt

from activities.delivery.providers.base import OutgoingMessage, PermanentDeliveryError, TransientDeliveryError
from activities.delivery.providers.fcm import SubscriptionGone
from notiflow.outbound import OutboundClient, OutboundRefused, OutboundUnavailable
from notiflow.settings import Settings

#: Renew the provider token after this (Apple: at most 60 min old, at most one new token per 20 min).
TOKEN_LIFETIME = 50 * 60
EXPIRATION_CRITICAL = 24 * 3600
EXPIRATION_NORMAL = 4 * 3600
ANSWER_CHARS = 200
#: APNs' reasons that mean this device token will never work again (for this app).
GONE_REASONS = {"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"}


def auth_key(text: str) -> str:
    """The .p8 auth key's PEM, given as is or as a path to its file."""
    text = text.strip()
    return text if text.startswith("-----BEGIN") else Path(text).read_text()


class ApnsSender:
    def __init__(self, settings: Settings, http: OutboundClient) -> None:
        assert settings.apns_configured and settings.apns_private_key is not None
        self.settings = settings
        self.http = http
        self.key = auth_key(settings.apns_private_key.get_secret_value())
        self._token: str | None = None
        self._made = 0.0
        #: provider tokens made (a new one at most every TOKEN_LIFETIME, or after APNs refused the last)
        self.tokens_made = 0

    def provider_token(self) -> str:
        if self._token is None or time.monotonic() - self._made >= TOKEN_LIFETIME:
            self._token = jwt.encode(
                {"iss": self.settings.apns_team_id, "iat": int(time.time())},
                self.key,
                algorithm="ES256",
                headers={"kid": self.settings.apns_key_id},
            )
            self._made = time.monotonic()
            self.tokens_made += 1
        return self._token

    async def send(self, token: str, message: OutgoingMessage, title: str, body: str, collapse: str) -> str:
        payload = {
            "aps": {"alert": {"title": title, "body": body}},
            "link": message.link,
            "notification_id": message.queue_id,
            "issue_id": message.issue_id,
        }
        lifetime = EXPIRATION_CRITICAL if message.critical else EXPIRATION_NORMAL
        headers = {
            "authorization": f"bearer {self.provider_token()}",
            "apns-topic": str(self.settings.apns_topic),
            "apns-push-type": "alert",
            "apns-priority": "10" if message.critical else "5",
            "apns-collapse-id": collapse,
            "apns-expiration": str(int(time.time()) + lifetime),
            "content-type": "application/json",
        }
        url = f"{self.settings.apns_url.rstrip('/')}/3/device/{token}"
        content = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            response = await self.http.request("POST", url, content=content, headers=headers)
        except OutboundRefused as exc:
            raise PermanentDeliveryError(f"APNs URL refused: {exc}") from None
        except (TimeoutError, OutboundUnavailable, OSError) as exc:
            raise TransientDeliveryError(f"APNs unreachable: {exc or type(exc).__name__}") from None
        status, text = response.status_code, " ".join(response.text.split())
        if status == 200:
            return f"apns-id {response.headers.get('apns-id', '')}".strip()
        try:
            reason = str(json.loads(text).get("reason", ""))
        except (ValueError, AttributeError):
            reason = ""
        said = f"APNs answered {status}{' ' + reason if reason else ''}: {text[:ANSWER_CHARS]}"
        if reason in GONE_REASONS or status == 410:
            raise SubscriptionGone(f"{said} (the device token is gone: removed)")
        if status == 403 and reason in ("ExpiredProviderToken", "InvalidProviderToken"):
            self._token = None  # a new provider token next time
            if reason == "ExpiredProviderToken":
                raise TransientDeliveryError(said)
            raise PermanentDeliveryError(f"{said} (check NOTIFLOW_APNS_TEAM_ID, _KEY_ID and _PRIVATE_KEY)")
        if status == 429 or status >= 500:
            raise TransientDeliveryError(said, retry_after=response.retry_after())
        raise PermanentDeliveryError(said)
