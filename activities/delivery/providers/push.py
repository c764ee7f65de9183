"""The PUSH provider: Web Push (RFC 8030) to each of the person's browsers, encrypted (RFC 8291) and signed (VAPID);
FCM (``fcm.py``) and APNs (``apns.py``, HTTP/2) to their phones.

A PUSH row is addressed to a person (``address`` = their id); at send time the provider reads their
``push_subscriptions`` and POSTs to each Web Push endpoint through the SSRF guard (``notiflow.outbound``):

- the body is JSON (``title``, ``body``, ``issue_id``, ``link`` — the click target, tracked when click
  tracking is on —, ``notification_id``, ``type``), encrypted ``aes128gcm`` for the subscription's ``p256dh``
  and ``auth`` keys (``http_ece``); the body text is cut to ``MAX_BODY_BYTES`` keeping the issue id;
- ``Authorization: vapid t=<ES256 JWT>, k=<public key>`` (``py_vapid``): ``aud`` the endpoint's origin,
  ``sub`` ``NOTIFLOW_VAPID_SUBJECT``, ``exp`` in ``JWT_LIFETIME`` (≤ 24 h);
- ``TTL`` 24 h for a critical notification (4 h otherwise), ``Urgency: high`` for a critical one (``normal``
  otherwise), ``Topic`` derived from the issue id so a newer message replaces an undelivered older one.

Answers, per subscription: 2xx delivered (``last_success_at``); 404 / 410 the subscription is gone: it is
deleted; 429, 5xx, timeouts and refused connections are transient (not before ``Retry-After``); other 4xx
and a refused endpoint are permanent. The row is SENT when one device took it; FAILED (with every reason)
when none can; retried when none took it and one may later.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.delivery.providers.apns import ApnsSender
from activities.delivery.providers.base import (
    OutgoingMessage,
    PermanentDeliveryError,
    Receipt,
    TransientDeliveryError,
)
from activities.delivery.providers.fcm import FcmSender, SubscriptionGone
from activities.delivery.providers.sms import fit_text
from notiflow.contracts import Channel
from notiflow.engagement import EngagementKind, record_engagement
from notiflow.models import PushSubscriptionRow
from notiflow.outbound import OutboundClient, OutboundRefused, OutboundUnavailable
from notiflow.settings import Settings
from notiflow.vapid import b64url_decode, private_key

#: iOS and Android show this much of a notification's body whole.
MAX_BODY_BYTES = 178
#: How long the push service keeps an undelivered message (RFC 8030 ``TTL``), in seconds.
TTL_CRITICAL = 24 * 3600
TTL_NORMAL = 4 * 3600
#: The VAPID JWT's lifetime (RFC 8292: at most 24 h).
JWT_LIFETIME = 12 * 3600
#: How much of a push service's answer is kept in an error message.
ANSWER_CHARS = 200


def fit_body(text: str, issue_id: str | None, max_bytes: int = MAX_BODY_BYTES) -> str:
    """The body in at most ``max_bytes`` UTF-8 bytes, the issue id always kept (``fit_text`` counts characters)."""
    length = max_bytes
    while True:
        body = fit_text(text, length, issue_id=issue_id)
        if len(body.encode()) <= max_bytes or length <= 20:
            return body.encode()[:max_bytes].decode("utf-8", "ignore")
        length -= max(1, (len(body.encode()) - max_bytes) // 2)


def topic(issue_id: str | None, queue_id: str) -> str:
    """RFC 8030 ``Topic``: at most 32 characters of the URL-safe base64 alphabet, one per issue."""
    digest = hashlib.sha256(f"notiflow:{issue_id or queue_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def origin(url: str) -> str:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


def payload(message: OutgoingMessage) -> bytes:
    body = {
        "title": message.subject,
        "body": fit_body(message.text, message.issue_id),
        "issue_id": message.issue_id,
        "link": message.link,
        "notification_id": message.queue_id,
        "type": message.notification_type,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def encrypt(data: bytes, p256dh: str, auth: str) -> bytes:
    """RFC 8291 ``aes128gcm``: an ephemeral P-256 key agreed with the browser's, salted, with its auth secret."""
    return http_ece.encrypt(
        data,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=b64url_decode(p256dh),
        auth_secret=b64url_decode(auth),
        version="aes128gcm",
    )


class PushProvider:
    """Web Push through one guarded HTTP client per worker."""

    channel = Channel.PUSH

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession] | None = None):
        self.settings = settings
        self.sessions = sessions
        self.concurrency = settings.push_concurrency
        self.name = "push:web"
        self._client: OutboundClient | None = None
        self._vapid: Vapid02 | None = None
        self._fcm: FcmSender | None = None
        self._apns: ApnsSender | None = None
        self._client_h2: OutboundClient | None = None

    def _http(self) -> OutboundClient:
        if self._client is None:
            self._client = OutboundClient(self.settings.outbound_allowlist, timeout=self.settings.push_timeout_seconds)
        return self._client

    def _http2(self) -> OutboundClient:
        """APNs' client: HTTP/2 only."""
        if self._client_h2 is None:
            self._client_h2 = OutboundClient(
                self.settings.outbound_allowlist, timeout=self.settings.push_timeout_seconds, http2_only=True
            )
        return self._client_h2

    def _signer(self) -> Vapid02:
        if self._vapid is None:
            assert self.settings.vapid_private_key is not None
            self._vapid = Vapid02(private_key=private_key(self.settings.vapid_private_key.get_secret_value()))
        return self._vapid

    def authorization(self, endpoint: str) -> str:
        claims = {
            "aud": origin(endpoint),
            "sub": self.settings.vapid_subject,
            "exp": int(time.time()) + JWT_LIFETIME,
        }
        return self._signer().sign(claims)["Authorization"]

    async def _subscriptions(self, user_id: str) -> list[PushSubscriptionRow]:
        assert self.sessions is not None
        async with self.sessions() as session:
            rows = await session.scalars(
                select(PushSubscriptionRow)
                .where(PushSubscriptionRow.user_id == user_id)
                .order_by(PushSubscriptionRow.created_at.desc(), PushSubscriptionRow.id)
            )
            return list(rows)

    async def _remove(self, subscription: PushSubscriptionRow, queue_id: str, answer: str) -> None:
        """A device that is gone leaves the list, and the row records it as a hard bounce is recorded (BOUNCED)."""
        assert self.sessions is not None
        async with self.sessions.begin() as session:
            await session.execute(delete(PushSubscriptionRow).where(PushSubscriptionRow.id == subscription.id))
            detail = {"push": subscription.kind, "subscription": str(subscription.id), "answer": answer[:200]}
            await record_engagement(session, queue_id, EngagementKind.BOUNCED, detail=detail)

    async def _succeeded(self, subscription_id: uuid.UUID, at: datetime) -> None:
        assert self.sessions is not None
        async with self.sessions.begin() as session:
            await session.execute(
                update(PushSubscriptionRow).where(PushSubscriptionRow.id == subscription_id).values(last_success_at=at)
            )

    async def _send_one(self, row: PushSubscriptionRow, message: OutgoingMessage, data: bytes) -> str:
        """The push service's answer for one device, or the exception that says what became of it."""
        if row.kind == "FCM":
            if not self.settings.fcm_configured:
                raise PermanentDeliveryError(
                    "FCM is not configured (NOTIFLOW_FCM_PROJECT_ID, NOTIFLOW_FCM_SERVICE_ACCOUNT)"
                )
            if self._fcm is None:
                self._fcm = FcmSender(self.settings, self._http())
            text = fit_body(message.text, message.issue_id)
            return await self._fcm.send(
                row.endpoint, message, message.subject, text, topic(message.issue_id, message.queue_id)
            )
        if row.kind == "APNS":
            if not self.settings.apns_configured:
                raise PermanentDeliveryError(
                    "APNs is not configured (NOTIFLOW_APNS_TEAM_ID, _KEY_ID, _PRIVATE_KEY, _TOPIC)"
                )
            if self._apns is None:
                self._apns = ApnsSender(self.settings, self._http2())
            text = fit_body(message.text, message.issue_id)
            return await self._apns.send(
                row.endpoint, message, message.subject, text, topic(message.issue_id, message.queue_id)
            )
        if row.kind != "WEB":
            raise PermanentDeliveryError(f"{row.kind} push is not supported yet")
        if self.settings.vapid_private_key is None:
            raise PermanentDeliveryError("NOTIFLOW_VAPID_PRIVATE_KEY is not set: Web Push cannot be delivered")
        if not row.p256dh or not row.auth:
            raise PermanentDeliveryError(f"push subscription {row.id} has no keys")
        try:
            body = encrypt(data, row.p256dh, row.auth)
        except Exception as exc:  # a malformed key the browser gave: this device cannot be reached
            raise PermanentDeliveryError(f"push subscription {row.id}: cannot encrypt ({exc})") from None
        headers = {
            "Authorization": self.authorization(row.endpoint),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(TTL_CRITICAL if message.critical else TTL_NORMAL),
            "Urgency": "high" if message.critical else "normal",
            "Topic": topic(message.issue_id, message.queue_id),
            "User-Agent": "notiflow-push",
        }
        try:
            response = await self._http().request("POST", row.endpoint, content=body, headers=headers)
        except OutboundRefused as exc:
            raise PermanentDeliveryError(f"push endpoint refused: {exc}") from None
        except (TimeoutError, OutboundUnavailable, OSError) as exc:
            raise TransientDeliveryError(f"push service unreachable: {exc or type(exc).__name__}") from None
        status = response.status_code
        answer = " ".join(response.text.split())[:ANSWER_CHARS]
        if 200 <= status < 300:
            return f"{status} {response.headers.get('location') or answer}".strip()
        said = f"push service answered {status}{': ' + answer if answer else ''}"
        if status in (404, 410):
            raise SubscriptionGone(f"{said} (the subscription is gone: removed)")
        if status == 429 or status >= 500:
            raise TransientDeliveryError(said, retry_after=response.retry_after())
        raise PermanentDeliveryError(said)

    async def send(self, message: OutgoingMessage, *, sent_at: datetime) -> Receipt:
        if not self.settings.push_configured:
            raise PermanentDeliveryError(
                "no push provider is configured (NOTIFLOW_VAPID_PRIVATE_KEY, NOTIFLOW_FCM_*, NOTIFLOW_APNS_*)"
            )
        subscriptions = await self._subscriptions(message.address)
        if not subscriptions:
            raise PermanentDeliveryError("no push subscription: the person has no browser subscribed")
        data = payload(message)
        delivered: list[str] = []
        permanent: list[str] = []
        transient: list[TransientDeliveryError] = []
        for row in subscriptions:
            try:
                answer = await self._send_one(row, message, data)
            except SubscriptionGone as exc:
                await self._remove(row, message.queue_id, str(exc))
                permanent.append(str(exc))
            except PermanentDeliveryError as exc:
                permanent.append(str(exc))
            except TransientDeliveryError as exc:
                transient.append(exc)
            else:
                delivered.append(f"{origin(row.endpoint) if row.kind == 'WEB' else row.kind}: {answer}")
                await self._succeeded(row.id, datetime.now(timezone.utc))
        if delivered:
            return Receipt(
                provider_message_id=f"push-{message.queue_id}",
                response="; ".join(delivered + permanent + [str(t) for t in transient])[:1000],
                provider=self.name,
            )
        if transient:
            waits = [t.retry_after for t in transient if t.retry_after]
            raise TransientDeliveryError(
                "; ".join(str(t) for t in transient), retry_after=max(waits) if waits else None
            )
        raise PermanentDeliveryError("; ".join(permanent))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._client_h2 is not None:
            await self._client_h2.aclose()
            self._client_h2 = None
