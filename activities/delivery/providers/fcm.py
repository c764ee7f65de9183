"""Firebase Cloud Messaging HTTP v1 for phone apps: one device token per subscription (kind ``FCM``).

``POST {NOTIFLOW_FCM_URL}/v1/projects/{NOTIFLOW_FCM_PROJECT_ID}/messages:send`` with an OAuth2 access token
obtained from the service account (``NOTIFLOW_FCM_SERVICE_ACCOUNT``: its JSON, or a path to it): an RS256
JWT assertion (``iss`` the account's ``client_email``, ``scope`` firebase.messaging, ``aud`` its ``token_uri``)
exchanged at ``token_uri`` (RFC 7523), cached until a minute before it expires. Both requests go through the
SSRF guard. The message has the title and body as ``notification``, the issue id, link and notification id as
``data``, ``android.priority`` ``high`` and a 24 h ``ttl`` for a critical one (``normal``, 4 h otherwise) and
the issue's ``collapse_key``. ``UNREGISTERED`` (404) or an invalid token (400 naming ``token``) removes the
subscription; 429 / 5xx are retried no sooner than ``Retry-After``; a refused token request is permanent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt

from activities.delivery.providers.base import OutgoingMessage, PermanentDeliveryError, TransientDeliveryError
from notiflow.outbound import OutboundClient, OutboundRefused, OutboundUnavailable
from notiflow.settings import Settings

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
ANSWER_CHARS = 200


class SubscriptionGone(PermanentDeliveryError):
    """The push service says this device is no more: its subscription is deleted."""


def service_account(text: str) -> dict:
    """The service account's JSON, given as is or as a path to its file."""
    text = text.strip()
    data = json.loads(text if text.startswith("{") else Path(text).read_text())
    for key in ("client_email", "private_key", "token_uri"):
        if not data.get(key):
            raise ValueError(f"the FCM service account has no {key}")
    return data


class FcmSender:
    def __init__(self, settings: Settings, http: OutboundClient) -> None:
        assert settings.fcm_service_account is not None and settings.fcm_project_id
        self.settings = settings
        self.http = http
        self.account = service_account(settings.fcm_service_account.get_secret_value())
        self._token: str | None = None
        self._expires = 0.0

    def assertion(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.account["client_email"],
            "scope": SCOPE,
            "aud": self.account["token_uri"],
            "iat": now,
            "exp": now + 3600,
        }
        headers = {"kid": self.account["private_key_id"]} if self.account.get("private_key_id") else None
        return jwt.encode(claims, self.account["private_key"], algorithm="RS256", headers=headers)

    async def access_token(self) -> str:
        if self._token and time.monotonic() < self._expires:
            return self._token
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": self.assertion()}
        try:
            response = await self.http.request("POST", self.account["token_uri"], data=form)
        except OutboundRefused as exc:
            raise PermanentDeliveryError(f"FCM token URL refused: {exc}") from None
        except (TimeoutError, OutboundUnavailable, OSError) as exc:
            raise TransientDeliveryError(f"FCM token service unreachable: {exc or type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientDeliveryError(
                f"FCM token service answered {response.status_code}", retry_after=response.retry_after()
            )
        try:
            body = json.loads(response.text)
            token, lifetime = body["access_token"], float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise PermanentDeliveryError(
                f"FCM token service answered {response.status_code}: {response.text[:ANSWER_CHARS]}"
            ) from None
        self._token, self._expires = token, time.monotonic() + max(lifetime - 60, 0)
        return token

    async def send(self, token: str, message: OutgoingMessage, title: str, body: str, collapse: str) -> str:
        payload = {
            "message": {
                "token": token,
                "notification": {"title": title, "body": body},
                "data": {
                    k: v
                    for k, v in {
                        "issue_id": message.issue_id,
                        "link": message.link,
                        "notification_id": message.queue_id,
                        "type": message.notification_type,
                    }.items()
                    if v
                },
                "android": {
                    "priority": "high" if message.critical else "normal",
                    "ttl": f"{24 * 3600 if message.critical else 4 * 3600}s",
                    "collapse_key": collapse,
                },
            }
        }
        url = f"{self.settings.fcm_url.rstrip('/')}/v1/projects/{self.settings.fcm_project_id}/messages:send"
        headers = {
            "Authorization": f"Bearer {await self.access_token()}",
            "Content-Type": "application/json; charset=utf-8",
        }
        try:
            response = await self.http.request("POST", url, content=json.dumps(payload).encode(), headers=headers)
        except OutboundRefused as exc:
            raise PermanentDeliveryError(f"FCM URL refused: {exc}") from None
        except (TimeoutError, OutboundUnavailable, OSError) as exc:
            raise TransientDeliveryError(f"FCM unreachable: {exc or type(exc).__name__}") from None
        status, text = response.status_code, " ".join(response.text.split())
        if 200 <= status < 300:
            try:
                return str(json.loads(text)["name"])
            except (ValueError, KeyError, TypeError):
                return f"{status}"
        said = f"FCM answered {status}: {text[:ANSWER_CHARS]}"
        if status == 401:  # the cached access token was revoked: fetch a new one next time
            self._token = None
            raise TransientDeliveryError(said)
        if "UNREGISTERED" in text or status == 404 or (status == 400 and "registration token" in text.lower()):
            raise SubscriptionGone(f"{said} (the device token is gone: removed)")
        if status == 429 or status >= 500:
            raise TransientDeliveryError(said, retry_after=response.retry_after())
        raise PermanentDeliveryError(said)
