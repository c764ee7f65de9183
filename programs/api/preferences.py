"""The signed-in person's notification settings: type × channel matrix, time zone, locale, quiet hours."""

from __future__ import annotations

from datetime import time

from fastapi import APIRouter, HTTPException
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.contracts import CRITICAL_TYPES, DEFAULT_CHANNELS, Channel, Frequency, NotificationType
from notiflow.directory import DEFAULT_LOCALE
from notiflow.models import NotificationPreferenceRow, UserRow
from notiflow.settings import Settings
from programs.api.auth import SIGNED_IN_ERRORS, CurrentUser
from programs.api.deps import AppSettings, Session, directory_user
from programs.api.errors import VALIDATION_ERRORS
from programs.api.schemas import NotificationSettings, PreferenceState, PreferencesUpdate, QuietHours, critical_reason

router = APIRouter(
    prefix="/api/v1/notifications/preferences",
    tags=["preferences"],
    responses={**SIGNED_IN_ERRORS, **VALIDATION_ERRORS},
)


def _matrix(stored: list[NotificationPreferenceRow], *, push: bool = False) -> list[PreferenceState]:
    """Every type × default channel (defaults where nothing is stored), plus other channels someone chose;
    with ``push`` (a push provider and a subscription) PUSH for every type too, off until switched on."""
    by_key = {(row.notification_type, row.delivery_method): row for row in stored}
    offered = (*DEFAULT_CHANNELS, Channel.PUSH) if push else DEFAULT_CHANNELS
    states = []
    for notification_type in NotificationType:
        for channel in Channel:
            row = by_key.get((notification_type, channel))
            if row is None and channel not in offered:
                continue
            states.append(
                PreferenceState(
                    notification_type=notification_type,
                    channel=channel,
                    enabled=row.is_enabled if row else channel in DEFAULT_CHANNELS,
                    frequency=Frequency(row.frequency) if row else Frequency.IMMEDIATE,
                    digest_hour=row.digest_hour if row else None,
                    critical=notification_type in CRITICAL_TYPES,
                    locked_reason=critical_reason(notification_type) if notification_type in CRITICAL_TYPES else None,
                    customized=row is not None,
                )
            )
    return states


async def _settings_of(session: AsyncSession, user: UserRow, settings: Settings) -> NotificationSettings:
    stored = (
        await session.scalars(select(NotificationPreferenceRow).where(NotificationPreferenceRow.user_id == user.id))
    ).all()
    return NotificationSettings(
        user_id=user.id,
        timezone=user.timezone or settings.timezone,
        locale=user.locale,
        quiet_hours=QuietHours.of(user.quiet_hours_start, user.quiet_hours_end),
        preferences=_matrix(list(stored), push=_push_available(user, settings)),
    )


def _push_available(user: UserRow, settings: Settings) -> bool:
    """PUSH is offered to a person with a push subscription where a push provider (VAPID) is configured."""
    return settings.push_configured and bool(getattr(user, "has_push_subscription", False))


def _channels_available(update: PreferencesUpdate, settings: Settings, user: UserRow) -> None:
    """SMS can be switched on only where an SMS gateway is configured, PUSH only with a push provider and a
    subscription of the person's (else the rows could only fail)."""
    for index, p in enumerate(update.preferences):
        if p.channel == Channel.PUSH and p.enabled and not _push_available(user, settings):
            reason = (
                "no push provider: NOTIFLOW_VAPID_PRIVATE_KEY is not set"
                if not settings.push_configured
                else "you have no push subscription: POST /api/v1/notifications/push-subscriptions first"
            )
            raise HTTPException(422, f"preferences[{index}]: PUSH is not available ({reason})")
    if settings.sms_url:
        return
    for index, p in enumerate(update.preferences):
        if p.channel == Channel.SMS and p.enabled:
            raise HTTPException(
                422,
                f"preferences[{index}]: SMS is not available on this server (no SMS gateway: "
                "NOTIFLOW_SMS_URL is not set); choose EMAIL or IN_APP",
            )


@router.get("", response_model=NotificationSettings, summary="My notification settings")
async def get_preferences(principal: CurrentUser, session: Session, settings: AppSettings) -> NotificationSettings:
    user = await directory_user(session, principal.user_id)
    return await _settings_of(session, user, settings)


@router.put("", response_model=NotificationSettings, summary="Change my notification settings")
async def put_preferences(
    update: PreferencesUpdate, principal: CurrentUser, session: Session, settings: AppSettings
) -> NotificationSettings:
    user = await directory_user(session, principal.user_id)
    _channels_available(update, settings, user)
    sent = update.model_fields_set
    if "timezone" in sent:
        user.timezone = update.timezone
    if "locale" in sent:
        user.locale = update.locale or DEFAULT_LOCALE
    if "quiet_hours" in sent:
        quiet = update.quiet_hours
        user.quiet_hours_start = time.fromisoformat(quiet.start) if quiet else None
        user.quiet_hours_end = time.fromisoformat(quiet.end) if quiet else None
    if update.preferences:
        statement = insert(NotificationPreferenceRow).values(
            [
                {
                    "user_id": user.id,
                    "notification_type": str(p.notification_type),
                    "delivery_method": p.channel,
                    "is_enabled": p.enabled,
                    "frequency": str(p.frequency),
                    "digest_hour": p.digest_hour,
                }
                for p in update.preferences
            ]
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id", "notification_type", "delivery_method"],
                set_={
                    "is_enabled": statement.excluded.is_enabled,
                    "frequency": statement.excluded.frequency,
                    "digest_hour": statement.excluded.digest_hour,
                    "updated_at": func.now(),
                },
            )
        )
    await session.commit()
    return await _settings_of(session, user, settings)
