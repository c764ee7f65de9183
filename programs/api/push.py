"""The signed-in person's push subscriptions (the browsers and phones PUSH reaches) and the VAPID public key.

``POST`` takes the Web Push subscription JSON exactly as the browser gives it (``PushSubscription.toJSON()``:
``{endpoint, keys: {p256dh, auth}}``); the endpoint passes the SSRF guard (``notiflow.outbound``) — a 422
naming the reason otherwise — and again at each send. A person keeps at most ``NOTIFLOW_PUSH_MAX_DEVICES``
subscriptions: a new one drops the oldest. Subscribing the same endpoint again refreshes its keys.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Response
from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from notiflow.models import PushSubscriptionRow
from notiflow.outbound import refusal
from notiflow.vapid import b64url_decode
from programs.api.auth import SIGNED_IN_ERRORS, CurrentUser
from programs.api.deps import AppSettings, Session, directory_user
from programs.api.errors import VALIDATION_ERRORS

router = APIRouter(prefix="/api/v1/notifications", tags=["push"], responses={**SIGNED_IN_ERRORS, **VALIDATION_ERRORS})

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "you have no push subscription with this id"}}
Key = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-]+=*$")]


class PushKeys(BaseModel):
    p256dh: Key = Field(description="the browser's P-256 public key (base64url, 65 bytes uncompressed)")
    auth: Key = Field(description="the browser's 16-byte auth secret (base64url)")

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        raw = b64url_decode(value)
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError("must be an uncompressed P-256 point (65 bytes, base64url)")
        return value.rstrip("=")

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(b64url_decode(value)) != 16:
            raise ValueError("must be 16 bytes (base64url)")
        return value.rstrip("=")


class PushSubscriptionIn(BaseModel):
    """A browser's ``PushSubscription.toJSON()`` (``expirationTime`` and unknown fields are ignored)."""

    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        examples=["https://fcm.googleapis.com/fcm/send/c1KrmpTuRm…"]
    )
    keys: PushKeys
    expirationTime: int | None = None


class DeviceTokenIn(BaseModel):
    """A phone app's registration: ``{"kind": "FCM", "token": …}`` or ``{"kind": "APNS", "token": <hex>}``."""

    kind: Literal["FCM", "APNS"]
    token: Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^[A-Za-z0-9_\-:.]+$")]

    @model_validator(mode="after")
    def _apns_token(self) -> DeviceTokenIn:
        # An APNs device token is hex (32 bytes today; Apple says not to assume the length), sent lowercase.
        if self.kind == "APNS":
            if not re.fullmatch(r"[0-9A-Fa-f]{16,400}", self.token) or len(self.token) % 2:
                raise ValueError("an APNs device token is an even number of hex digits (16 to 400)")
            self.token = self.token.lower()
        return self


class PushSubscriptionOut(BaseModel):
    id: uuid.UUID
    kind: Literal["WEB", "FCM", "APNS"]
    endpoint: str
    user_agent: str | None
    created_at: datetime
    last_success_at: datetime | None


class VapidPublicKey(BaseModel):
    public_key: str = Field(description="base64url of the uncompressed P-256 point: pushManager's applicationServerKey")


def _out(row: PushSubscriptionRow) -> PushSubscriptionOut:
    return PushSubscriptionOut(
        id=row.id,
        kind=row.kind,  # type: ignore[arg-type]
        endpoint=row.endpoint,
        user_agent=row.user_agent,
        created_at=row.created_at,
        last_success_at=row.last_success_at,
    )


@router.get(
    "/push/vapid-public-key",
    response_model=VapidPublicKey,
    summary="The VAPID public key browsers subscribe with",
    responses={404: {"description": "Web Push is not configured (NOTIFLOW_VAPID_PRIVATE_KEY unset)"}},
)
async def vapid_public_key(principal: CurrentUser, settings: AppSettings) -> VapidPublicKey:
    key = settings.vapid_public_key
    if key is None:
        raise HTTPException(404, "Web Push is not configured on this server (NOTIFLOW_VAPID_PRIVATE_KEY is not set)")
    return VapidPublicKey(public_key=key)


@router.post(
    "/push-subscriptions",
    response_model=PushSubscriptionOut,
    status_code=201,
    summary="Subscribe this browser (or phone app: {kind: FCM or APNS, token}) to my push notifications",
)
async def create_push_subscription(
    body: PushSubscriptionIn | DeviceTokenIn,
    principal: CurrentUser,
    session: Session,
    settings: AppSettings,
    user_agent: Annotated[str | None, Header()] = None,
) -> PushSubscriptionOut:
    kind: str
    endpoint: str
    p256dh: str | None
    auth: str | None
    if isinstance(body, DeviceTokenIn) and body.kind == "APNS":
        if not settings.apns_configured:
            raise HTTPException(
                422,
                "APNs is not configured on this server "
                "(NOTIFLOW_APNS_TEAM_ID, NOTIFLOW_APNS_KEY_ID, NOTIFLOW_APNS_PRIVATE_KEY, NOTIFLOW_APNS_TOPIC)",
            )
        kind, endpoint, p256dh, auth = body.kind, body.token, None, None
    elif isinstance(body, DeviceTokenIn):
        if not settings.fcm_configured:
            raise HTTPException(
                422, "FCM is not configured on this server (NOTIFLOW_FCM_PROJECT_ID, NOTIFLOW_FCM_SERVICE_ACCOUNT)"
            )
        kind, endpoint, p256dh, auth = body.kind, body.token, None, None
    else:
        problem = await refusal(body.endpoint, settings.outbound_allowlist)
        if problem:
            raise HTTPException(422, f"endpoint refused: {problem}")
        kind, endpoint, p256dh, auth = "WEB", body.endpoint, body.keys.p256dh, body.keys.auth
    user = await directory_user(session, principal.user_id)
    values = {
        "user_id": user.id,
        "kind": kind,
        "endpoint": endpoint,
        "p256dh": p256dh,
        "auth": auth,
        "user_agent": (user_agent or "")[:500] or None,
    }
    statement = insert(PushSubscriptionRow).values(id=uuid.uuid4(), **values)
    upsert = statement.on_conflict_do_update(
        index_elements=["user_id", "endpoint"],
        set_={
            "p256dh": statement.excluded.p256dh,
            "auth": statement.excluded.auth,
            "user_agent": statement.excluded.user_agent,
        },
    ).returning(PushSubscriptionRow.id)
    subscription_id = (await session.execute(upsert)).scalar_one()
    # At most NOTIFLOW_PUSH_MAX_DEVICES: the oldest go (this one is never among them).
    others = (
        await session.scalars(
            select(PushSubscriptionRow.id)
            .where(PushSubscriptionRow.user_id == user.id, PushSubscriptionRow.id != subscription_id)
            .order_by(PushSubscriptionRow.created_at.desc(), PushSubscriptionRow.id.desc())
        )
    ).all()
    dropped = others[settings.push_max_devices - 1 :]
    if dropped:
        await session.execute(delete(PushSubscriptionRow).where(PushSubscriptionRow.id.in_(dropped)))
    await session.commit()
    row = await session.get(PushSubscriptionRow, subscription_id)
    assert row is not None
    return _out(row)


@router.get("/push-subscriptions", response_model=list[PushSubscriptionOut], summary="My push subscriptions")
async def list_push_subscriptions(principal: CurrentUser, session: Session) -> list[PushSubscriptionOut]:
    rows = await session.scalars(
        select(PushSubscriptionRow)
        .where(PushSubscriptionRow.user_id == principal.user_id)
        .order_by(PushSubscriptionRow.created_at.desc(), PushSubscriptionRow.id)
    )
    return [_out(row) for row in rows]


@router.delete(
    "/push-subscriptions/{subscription_id}",
    status_code=204,
    response_class=Response,
    summary="Unsubscribe one of my devices",
    responses=NOT_FOUND,
)
async def delete_push_subscription(subscription_id: uuid.UUID, principal: CurrentUser, session: Session) -> Response:
    deleted = await session.execute(
        delete(PushSubscriptionRow)
        .where(PushSubscriptionRow.id == subscription_id, PushSubscriptionRow.user_id == principal.user_id)
        .returning(PushSubscriptionRow.id)
    )
    if deleted.first() is None:
        raise HTTPException(404, f"you have no push subscription {subscription_id}")
    await session.commit()
    return Response(status_code=204)
