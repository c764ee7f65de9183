"""Who hears about what, and whether their preferences let it through.

Pure functions over plain data, so the rules are unit-tested without any
service and read like the tracker team's table of notification types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from notiflow.contracts import (
    CRITICAL_TYPES,
    Channel,
    DeliveryStatus,
    EventType,
    Frequency,
    IssueEvent,
    NotificationType,
    Priority,
)

#: Channels a person has only once they switch them on for a type (``PUT /preferences``): SMS, PUSH. A critical
#: notification that FAILED elsewhere may still go out by SMS or PUSH (``NOTIFLOW_CRITICAL_FALLBACK``).
OPT_IN_CHANNELS: tuple[Channel, ...] = (Channel.SMS, Channel.PUSH)


def channels_for(
    user_id: str,
    notification_type: NotificationType | str,
    preferences: dict[tuple[str, str, str], Preference],
    defaults: tuple[Channel, ...],
) -> list[Channel]:
    """The default channels, plus each opt-in channel this person switched on for this type."""
    chosen = [
        channel
        for channel in OPT_IN_CHANNELS
        if (p := preferences.get((user_id, str(notification_type), str(channel)))) is not None and p.is_enabled
    ]
    return [*defaults, *(c for c in chosen if c not in defaults)]


#: When several types apply to one person, the first in this order is the one they get.
TYPE_PRECEDENCE: tuple[NotificationType, ...] = (
    NotificationType.SYSTEM_ERROR_SPIKE,
    NotificationType.AUTO_ISSUE_DETECTED,
    NotificationType.HIGH_PRIORITY_ISSUE,
    NotificationType.ISSUE_OVERDUE,
    NotificationType.ISSUE_ASSIGNED,
    NotificationType.ISSUE_RESOLVED,
    NotificationType.ISSUE_REOPENED,
    NotificationType.ISSUE_STATUS_CHANGED,
    NotificationType.ISSUE_COMMENT_ADDED,
    NotificationType.ISSUE_CREATED,
    NotificationType.DAILY_ISSUE_SUMMARY,
    NotificationType.WEEKLY_ISSUE_REPORT,
)


@dataclass(frozen=True)
class Directory:
    """The slice of the user directory the rules need for one event."""

    admins: tuple[str, ...] = ()
    on_call_admins: tuple[str, ...] = ()
    earlier_commenters: tuple[str, ...] = ()


def derived_types(event: IssueEvent) -> list[NotificationType]:
    """The event's own type plus what the system derives from it."""
    issue = event.issue
    if event.type == EventType.AUTO_ISSUE_DETECTED:
        return [NotificationType.AUTO_ISSUE_DETECTED]
    types = [NotificationType(event.type)]
    if event.type == EventType.ISSUE_CREATED:
        if issue.priority in (Priority.CRITICAL, Priority.HIGH):
            types.append(NotificationType.HIGH_PRIORITY_ISSUE)
        if issue.is_auto_reported and issue.priority == Priority.CRITICAL:
            types.append(NotificationType.AUTO_ISSUE_DETECTED)
    return types


def audience_for(notification_type: NotificationType, event: IssueEvent, directory: Directory) -> list[str]:
    """Recipients of one type for one event, before removing the actor."""
    issue = event.issue
    reporter = [issue.reporter.id] if issue.reporter else []
    assignee = [issue.assignee.id] if issue.assignee else []
    match notification_type:
        case NotificationType.ISSUE_CREATED | NotificationType.HIGH_PRIORITY_ISSUE:
            return list(directory.admins)
        case NotificationType.ISSUE_ASSIGNED:
            return assignee
        case NotificationType.ISSUE_STATUS_CHANGED | NotificationType.ISSUE_RESOLVED | NotificationType.ISSUE_REOPENED:
            return reporter + assignee
        case NotificationType.ISSUE_COMMENT_ADDED:
            return reporter + assignee + list(directory.earlier_commenters)
        case NotificationType.AUTO_ISSUE_DETECTED:
            return list(directory.on_call_admins or directory.admins)
        case _:
            return []


def resolve_recipients(event: IssueEvent, directory: Directory) -> dict[str, NotificationType]:
    """One type per recipient (the most important that applies); never the actor."""
    actor_id = event.actor.id if event.actor else None
    chosen: dict[str, NotificationType] = {}
    for notification_type in derived_types(event):
        for user_id in audience_for(notification_type, event, directory):
            if user_id == actor_id:
                continue
            current = chosen.get(user_id)
            if current is None or TYPE_PRECEDENCE.index(notification_type) < TYPE_PRECEDENCE.index(current):
                chosen[user_id] = notification_type
    return chosen


def is_critical(notification_type: NotificationType, priority: Priority | str | None, *, on_call: bool = False) -> bool:
    """Critical messages ignore opt-outs, quiet hours and digests."""
    return (
        notification_type in CRITICAL_TYPES
        or priority == Priority.CRITICAL
        or (notification_type == NotificationType.ISSUE_OVERDUE and on_call)
    )


@dataclass(frozen=True)
class Preference:
    is_enabled: bool = True
    frequency: Frequency = Frequency.IMMEDIATE


@dataclass(frozen=True)
class Decision:
    send: bool
    frequency: Frequency = Frequency.IMMEDIATE
    reason: str = ""


def decide(preference: Preference | None, *, critical: bool) -> Decision:
    """Apply one person's preference for one type × channel."""
    if critical:
        return Decision(True, Frequency.IMMEDIATE, "critical")
    preference = preference or Preference()
    if not preference.is_enabled:
        return Decision(False, reason="disabled by the recipient's preferences")
    return Decision(True, preference.frequency)


def quiet_until(now: datetime, tz_name: str, start: time | None, end: time | None) -> datetime | None:
    """The end of the recipient's quiet window if ``now`` falls inside it, else None.

    The window is in the recipient's own time zone and may span midnight (22:00–07:00).
    """
    if start is None or end is None or start == end:
        return None
    zone = ZoneInfo(tz_name)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    end_day: date = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(timezone.utc)


@dataclass(frozen=True)
class RecipientDecision:
    """What happens to one notification for one person on one channel, before rendering."""

    #: PENDING (to send), CANCELLED (skipped: reason says why) or FAILED (cannot be sent: reason says why)
    status: DeliveryStatus
    reason: str | None = None
    #: IMMEDIATE, or HOURLY/DAILY for the person's digest (a preference, or over the hourly rate cap)
    frequency: Frequency = Frequency.IMMEDIATE
    #: quiet hours: not before this instant (None = now)
    not_before: datetime | None = None
    #: sent at once and so counted against the person's hourly rate cap
    counts_toward_cap: bool = False


def decide_for_recipient(
    *,
    notification_type: NotificationType | str,
    channel: Channel,
    critical: bool,
    forced: bool,
    preference: Preference | None,
    address: str | None,
    has_template: bool,
    now: datetime,
    timezone_name: str,
    quiet_start: time | None,
    quiet_end: time | None,
    sent_this_hour: int,
    max_per_hour: int,
) -> RecipientDecision:
    """Every per-recipient rule in one place, in order: preference (critical and send-test override it),
    an address for the channel, a template, quiet hours, then digest or rate cap.

    Critical messages ignore opt-outs, quiet hours, digests and the rate cap.
    """
    choice = decide(None if forced else preference, critical=critical or forced)
    if not choice.send:
        return RecipientDecision(DeliveryStatus.CANCELLED, choice.reason)
    if not address:
        return RecipientDecision(DeliveryStatus.CANCELLED, f"no {channel.lower()} address")
    if not has_template:
        return RecipientDecision(DeliveryStatus.FAILED, f"no active template for {notification_type} on {channel}")
    quiet = None if critical else quiet_until(now, timezone_name, quiet_start, quiet_end)
    frequency = choice.frequency
    if frequency != Frequency.IMMEDIATE or critical or forced:
        return RecipientDecision(DeliveryStatus.PENDING, frequency=frequency, not_before=quiet)
    if sent_this_hour >= max_per_hour:  # past the cap, the rest of the hour goes into an hourly digest
        return RecipientDecision(DeliveryStatus.PENDING, frequency=Frequency.HOURLY, not_before=quiet)
    return RecipientDecision(DeliveryStatus.PENDING, not_before=quiet, counts_toward_cap=True)
