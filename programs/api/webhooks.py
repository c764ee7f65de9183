"""Webhook, Slack and Teams subscriptions (admin): what external systems hear about, and where.

A subscription is a ``kind`` (WEBHOOK, SLACK, TEAMS), a URL and the notification
types it wants. Each issue event gives one delivery per matching subscription
(the most specific of its matching types), planned and sent by the same workflow
as people's notifications; workers pick up changes within 5 s.

Every URL passes the SSRF guard (``notiflow.outbound``) when it is saved — a 422
naming the reason otherwise — and again at each send. A WEBHOOK gets a signing
secret (``whsec_…``) returned **once**, in the answer that creates it (or rotates
it); listings never show it. Rotating keeps the previous secret valid for
``NOTIFLOW_WEBHOOK_SECRET_GRACE``: deliveries carry both signatures meanwhile.
Every change is in the audit trail (``webhook.create`` / ``update`` / ``delete`` /
``rotate_secret``; the worker's own ``webhook.deactivate`` after a 410), URLs
shortened to their origin and no secret.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field, StringConstraints, field_validator
from sqlalchemy import select

from notiflow.audit import record_audit
from notiflow.contracts import NotificationType
from notiflow.models import WebhookSubscriptionRow
from notiflow.outbound import refusal
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import AppSettings, Session
from programs.api.errors import VALIDATION_ERRORS
from programs.api.schemas import _Request

router = APIRouter(
    prefix="/api/v1/notifications/webhooks", tags=["webhooks"], responses={**ROLE_ERRORS, **VALIDATION_ERRORS}
)

Kind = Literal["WEBHOOK", "SLACK", "TEAMS"]
Url = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
#: Bytes of randomness in a signing secret (Standard Webhooks: between 24 and 64).
SECRET_BYTES = 32
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no subscription with this id"}}


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SubscriptionIn(_Request):
    kind: Kind
    url: Url = Field(examples=["https://hooks.slack.com/services/T000/B000/XXXX"])
    notification_types: list[NotificationType] = Field(min_length=1, max_length=len(NotificationType))
    active: bool = True
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        default=None, description="a label for people; default: the kind and the URL's host"
    )

    @field_validator("notification_types")
    @classmethod
    def _distinct(cls, value: list[NotificationType]) -> list[NotificationType]:
        return list(dict.fromkeys(value))


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    kind: Kind
    name: str
    url: str
    notification_types: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime
    #: why notiflow switched it off (the receiver answered 410 Gone), if it did
    deactivated_reason: str | None = None
    #: WEBHOOK: until when deliveries are also signed with the previous secret (after a rotation)
    previous_secret_expires_at: datetime | None = None

    @classmethod
    def of(cls, row: WebhookSubscriptionRow) -> SubscriptionOut:
        return cls(
            id=row.id,
            kind=row.channel,
            name=row.name,
            url=row.url,
            notification_types=list(row.notification_types),
            active=row.is_active,
            created_at=row.created_at,
            updated_at=row.updated_at,
            deactivated_reason=row.deactivated_reason,
            previous_secret_expires_at=row.previous_secret_expires_at,
        )


class SubscriptionCreated(SubscriptionOut):
    secret: str | None = Field(
        default=None, description="WEBHOOK: the signing secret, shown only in this answer; keep it now"
    )


class SecretRotated(BaseModel):
    id: uuid.UUID
    secret: str = Field(description="the new signing secret, shown only in this answer")
    previous_secret_expires_at: datetime = Field(description="until then deliveries carry both signatures")


def _origin(url: str) -> str:
    """A URL without its path: Slack and Teams URLs are credentials, the audit trail keeps only where they point."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/…"
    except ValueError:
        return "(malformed)"


async def _checked_url(url: str, settings) -> str:
    problem = await refusal(url, settings.outbound_allowlist)
    if problem:
        raise HTTPException(422, f"url refused: {problem}")
    return url


async def _subscription_or_404(session, subscription_id: uuid.UUID) -> WebhookSubscriptionRow:
    row = await session.get(WebhookSubscriptionRow, subscription_id, with_for_update=True)
    if row is None:
        raise HTTPException(
            404, f"no webhook subscription {subscription_id}; GET /api/v1/notifications/webhooks lists them"
        )
    return row


def _snapshot(row: WebhookSubscriptionRow) -> dict:
    return {
        "kind": row.channel,
        "name": row.name,
        "url": _origin(row.url),
        "notification_types": list(row.notification_types),
        "active": row.is_active,
    }


@router.get("", response_model=list[SubscriptionOut], summary="Webhook, Slack and Teams subscriptions")
async def list_subscriptions(_admin: Admin, session: Session) -> list[SubscriptionOut]:
    rows = await session.scalars(
        select(WebhookSubscriptionRow).order_by(WebhookSubscriptionRow.created_at, WebhookSubscriptionRow.id)
    )
    return [SubscriptionOut.of(row) for row in rows]


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionCreated,
    summary="Subscribe a URL; a WEBHOOK's signing secret is in this answer only",
)
async def create_subscription(
    body: SubscriptionIn, admin: Admin, session: Session, settings: AppSettings
) -> SubscriptionCreated:
    url = await _checked_url(body.url, settings)
    secret = new_secret() if body.kind == "WEBHOOK" else None
    row = WebhookSubscriptionRow(
        name=body.name or f"{body.kind.capitalize()} {urlsplit(url).hostname}"[:100],
        channel=body.kind,
        url=url,
        secret=secret,
        notification_types=[str(t) for t in body.notification_types],
        is_active=body.active,
    )
    session.add(row)
    await session.flush()
    await record_audit(
        session, actor=admin.user_id, action="webhook.create", target=str(row.id), details={"after": _snapshot(row)}
    )
    await session.commit()
    await session.refresh(row)
    return SubscriptionCreated(**SubscriptionOut.of(row).model_dump(), secret=secret)


@router.put(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    summary="Change a subscription (not its kind)",
    responses=NOT_FOUND,
)
async def update_subscription(
    subscription_id: uuid.UUID, body: SubscriptionIn, admin: Admin, session: Session, settings: AppSettings
) -> SubscriptionOut:
    row = await _subscription_or_404(session, subscription_id)
    if body.kind != row.channel:
        raise HTTPException(422, f"kind cannot change ({row.channel} → {body.kind}); create a new subscription instead")
    before = _snapshot(row)
    url_changed = body.url != row.url
    if url_changed:
        row.url = await _checked_url(body.url, settings)
    row.notification_types = [str(t) for t in body.notification_types]
    if body.name:
        row.name = body.name
    if body.active and not row.is_active:
        row.deactivated_reason = None
    row.is_active = body.active
    row.updated_at = datetime.now(timezone.utc)
    after = _snapshot(row)
    changed = {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}
    if url_changed and "url" not in changed:  # same origin, another path: say it changed, not how
        changed["url"] = {"before": before["url"], "after": after["url"]}
    await record_audit(session, actor=admin.user_id, action="webhook.update", target=str(row.id), details=changed)
    await session.commit()
    await session.refresh(row)
    return SubscriptionOut.of(row)


@router.delete("/{subscription_id}", status_code=204, summary="Remove a subscription", responses=NOT_FOUND)
async def delete_subscription(subscription_id: uuid.UUID, admin: Admin, session: Session) -> Response:
    row = await _subscription_or_404(session, subscription_id)
    await record_audit(
        session, actor=admin.user_id, action="webhook.delete", target=str(row.id), details={"before": _snapshot(row)}
    )
    await session.delete(row)
    await session.commit()
    return Response(status_code=204)


@router.post(
    "/{subscription_id}/rotate-secret",
    response_model=SecretRotated,
    responses=NOT_FOUND,
    summary="New signing secret for a WEBHOOK; the previous one stays valid for the grace period",
)
async def rotate_secret(
    subscription_id: uuid.UUID, admin: Admin, session: Session, settings: AppSettings
) -> SecretRotated:
    row = await _subscription_or_404(session, subscription_id)
    if row.channel != "WEBHOOK":
        raise HTTPException(
            422, f"a {row.channel} subscription is not signed; only WEBHOOK subscriptions have a secret"
        )
    now = datetime.now(timezone.utc)
    secret = new_secret()
    row.previous_secret, row.secret = row.secret, secret
    row.previous_secret_expires_at = now + settings.webhook_secret_grace
    row.updated_at = now
    await record_audit(
        session,
        actor=admin.user_id,
        action="webhook.rotate_secret",
        target=str(row.id),
        details={"previous_secret_valid_until": row.previous_secret_expires_at.isoformat()},
    )
    await session.commit()
    return SecretRotated(id=row.id, secret=secret, previous_secret_expires_at=row.previous_secret_expires_at)
