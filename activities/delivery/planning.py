"""Turning "tell these people this" into queue rows: the rules decide, the template renders, a row records it.

``queue_rows`` is pure (no I/O): the plan activity loads what it needs, calls it
off the event loop (rendering is bounded but CPU-bound), then inserts the rows.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from activities.bounces.suppression import applies, describe
from activities.delivery.rows import Outcome, QueueRow, RowDecision, cannot_send, recorded_decision
from notiflow.contracts import (
    DEFAULT_CHANNELS,
    Channel,
    DeliveryStatus,
    Frequency,
    IssueEvent,
    NotificationType,
    UserRef,
)
from notiflow.experiments import HOLDOUT, RunningExperiment
from notiflow.models import UserRow
from notiflow.runs import NotificationRequest
from notiflow.settings import Settings
from notiflow.templates.render import TemplateSource, template_name
from notiflow.templates.samples import sample_context
from notiflow.templates.store import pick_template, recipient_context, render_for
from notiflow.tokens import UnsubscribeRequest, unsubscribe_url
from workflows.delivery.rules import (
    TYPE_PRECEDENCE,
    Preference,
    channels_for,
    decide_for_recipient,
    derived_types,
    is_critical,
)
from workflows.delivery.types import DeliveryPlan, RetrySpec

#: Fallbacks of a critical audience, recorded on the rows (``context_data.fallback``) and in the run's outcome.
NO_ON_CALL = "no admin on call: sent to every admin"
NOBODY = "no admin in the directory: nobody could be told"


def empty_plan(settings: Settings) -> DeliveryPlan:
    """A plan with the worker's batch and retry settings, before any delivery is added."""
    return DeliveryPlan(
        batch_size=settings.notification_batch_size,
        retry=RetrySpec(
            maximum_attempts=settings.notification_retry_attempts,
            initial_seconds=settings.retry_initial_seconds,
            max_seconds=settings.retry_max_seconds,
            deadline_seconds=settings.delivery_deadline.total_seconds(),
        ),
    )


@dataclass
class ResolvedAudience:
    """Who hears a notification (one type each): resolved for a plan's first slice, and again by a worker that
    plans a later slice without it kept (``DeliveryActivities._audience_in_order``)."""

    recipients: dict[str, NotificationType]
    issue: dict[str, Any] | None
    #: a critical notification's audience was empty and this wider one was used
    fallback: str | None = None


@dataclass
class SharedContext:
    """What every slice of a plan reads the same: the active templates and the running experiments."""

    templates: dict[str, TemplateSource]
    experiments: dict[str, RunningExperiment]


@dataclass
class PlanningContext:
    """Everything ``queue_rows`` needs, loaded by the plan activity in one transaction."""

    recipients: dict[str, NotificationType]
    users: dict[str, UserRow]
    preferences: dict[tuple[str, str, str], Preference]
    templates: dict[str, TemplateSource]
    issue: dict[str, Any] | None
    #: (recipient, channel) → immediate notifications in the last hour (rate cap)
    sent_this_hour: Counter
    fallback: str | None = None
    #: (channel, address) → its active suppression (``activities/bounces/queries.py : suppressed``)
    suppressions: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: template name → its RUNNING experiment (``activities/experiments/queries.py : running_experiments``)
    experiments: dict[str, RunningExperiment] = field(default_factory=dict)


def queue_rows(
    request: NotificationRequest, audience: PlanningContext, settings: Settings, now: datetime
) -> tuple[list[QueueRow], DeliveryPlan]:
    """One row per recipient × channel, decided by ``decide_for_recipient`` and rendered; the plan's counts."""
    plan = empty_plan(settings)
    plan.fallback = audience.fallback
    rows: list[QueueRow] = []
    channels = request.channels or list(DEFAULT_CHANNELS)
    issue = audience.issue
    priority = issue["priority"] if issue else None
    for user_id, notification_type in audience.recipients.items():
        user = audience.users.get(user_id)
        if user is None or not user.is_active:
            for channel in channels:
                plan.skipped[channel] = plan.skipped.get(channel, 0) + 1
            continue
        critical = is_critical(notification_type, priority, on_call=request.data.get("audience") == "on_call")
        for channel in (
            channels
            if request.channels
            else channels_for(user_id, notification_type, audience.preferences, DEFAULT_CHANNELS)
        ):
            row = _row_for(request, audience, user, notification_type, Channel(channel), critical, settings, now)
            if row.status == DeliveryStatus.CANCELLED:
                plan.skipped[channel] = plan.skipped.get(channel, 0) + 1
            elif row.status == DeliveryStatus.FAILED:
                plan.failed[channel] = plan.failed.get(channel, 0) + 1
            if row.variant is not None:  # the run's details say how many went to each arm
                arm = f"{row.decision.model_extra['experiment']['name']}: {row.variant}"  # type: ignore[index]
                plan.experiments[arm] = plan.experiments.get(arm, 0) + 1
            rows.append(row)
        if critical and audience.suppressions:
            rows += _suppression_fallbacks(request, audience, user, notification_type, rows, settings, now)
    return rows, plan


def _suppressed(audience: PlanningContext, user: UserRow, channel: Channel | str, critical: bool):
    """The suppression that stops this person's notification on this channel, if any."""
    address = channel_address(user, channel)
    entry = audience.suppressions.get((str(channel), address)) if address else None
    return entry if entry is not None and applies(entry, critical=critical) else None


def _suppression_fallbacks(
    request: NotificationRequest,
    audience: PlanningContext,
    user: UserRow,
    notification_type: NotificationType,
    rows: list[QueueRow],
    settings: Settings,
    now: datetime,
) -> list[QueueRow]:
    """A critical notification skipped on a suppressed address goes at once on the person's next channel in
    ``NOTIFLOW_CRITICAL_FALLBACK`` (as ``fallback.py`` does for a FAILED one): none if it is already on its
    way on a later channel; the rows (and their decisions) say ``fallback_to`` / ``fallback_of``."""
    mine = {r.delivery_method: r for r in rows if r.recipient_id == user.id}
    order = settings.critical_fallback_channels
    added: list[QueueRow] = []
    for skipped in [r for r in mine.values() if r.context_data.get("suppressed")]:
        failed = skipped.delivery_method
        for channel in order[order.index(failed) + 1 :] if failed in order else order:
            planned = mine.get(channel)
            if planned is not None:
                if planned.status == DeliveryStatus.PENDING:
                    break  # told there already
                continue
            if not channel_address(user, channel) or _suppressed(audience, user, channel, True):
                continue
            row = _row_for(request, audience, user, notification_type, Channel(channel), True, settings, now)
            if row.status != DeliveryStatus.PENDING:
                continue
            row.context_data |= {"fallback_of": str(skipped.id), "fallback_from": failed}
            row.decision = RowDecision(
                outcome=Outcome.SEND,
                reason=f"critical: the {failed} address is suppressed, sent instead by {channel}",
                at=now,
                fallback_of=str(skipped.id),
            )
            target = {"channel": channel, "queue_id": str(row.id)}
            skipped.context_data["fallback_to"] = target
            skipped.decision.fallback_to = target
            mine[channel] = row
            added.append(row)
            break
    return added


def _row_for(
    request: NotificationRequest,
    audience: PlanningContext,
    user: UserRow,
    notification_type: NotificationType,
    channel: Channel,
    critical: bool,
    settings: Settings,
    now: datetime,
) -> QueueRow:
    """One queue row: the rules decide, the template renders (if it is to be sent), the row records both."""
    user_id, issue = user.id, audience.issue
    source = pick_template(audience.templates, notification_type, channel, user.locale)
    preference = audience.preferences.get((user_id, str(notification_type), str(channel)))
    decision = decide_for_recipient(
        notification_type=notification_type,
        channel=channel,
        critical=critical,
        forced=request.ignore_preferences,
        preference=preference,
        address=channel_address(user, channel),
        has_template=source is not None,
        now=now,
        timezone_name=user.timezone or settings.timezone,
        quiet_start=user.quiet_hours_start,
        quiet_end=user.quiet_hours_end,
        sent_this_hour=audience.sent_this_hour[(user_id, str(channel))],
        max_per_hour=settings.max_per_hour,
    )
    recorded = recorded_decision(
        decision,
        preference,
        critical=critical,
        forced=request.ignore_preferences,
        max_per_hour=settings.max_per_hour,
        now=now,
    )
    status, reason, unsubscribe, row_id = decision.status, decision.reason, None, uuid.uuid4()
    suppression = _suppressed(audience, user, channel, critical)
    if suppression is not None and status == DeliveryStatus.PENDING:
        status, reason = DeliveryStatus.CANCELLED, describe(suppression)
        recorded = RowDecision(
            outcome=Outcome.SKIPPED,
            reason=reason,
            at=now,
            suppressed={"id": str(suppression.id), "reason": suppression.reason, "scope": suppression.scope},
        )
    else:
        suppression = None
    fields = {"template_name": source.name if source else template_name(str(notification_type), str(channel), "en")}
    templates: dict[str, TemplateSource] | None = audience.templates
    variant = None
    experiment = audience.experiments.get(source.name) if source is not None else None
    if experiment is not None and status == DeliveryStatus.PENDING and decision.frequency == Frequency.IMMEDIATE:
        templates, variant, status, reason, recorded = _in_experiment(experiment, user_id, critical, recorded, now)
    if status == DeliveryStatus.PENDING:
        if channel == Channel.EMAIL and not critical:
            unsubscribe = unsubscribe_url(
                settings.public_api_url,
                settings.jwt_secret,
                UnsubscribeRequest(user_id, str(notification_type), str(channel), str(row_id)),
            )
        context = template_context(request, notification_type, user, issue, unsubscribe, settings)
        outcome = render_for(templates or audience.templates, notification_type, channel, user.locale, context)
        fields, reason = outcome.row_fields(), outcome.failure
        if reason:
            status, recorded = DeliveryStatus.FAILED, cannot_send(reason, now)
    if status == DeliveryStatus.PENDING and decision.counts_toward_cap:
        audience.sent_this_hour[(user_id, str(channel))] += 1
    digest = {"digest": str(decision.frequency)} if decision.frequency != Frequency.IMMEDIATE else {}
    context_data: dict[str, Any] = {
        "critical": critical,
        "run_id": request.run_id,
        "unsubscribe_url": unsubscribe,
        "link": issue_link(issue, settings),
        "recipient_name": user.name,
    } | digest
    if audience.fallback:
        context_data["fallback"] = audience.fallback
    if suppression is not None:
        context_data["suppressed"] = {"id": str(suppression.id), "reason": suppression.reason}
    if request.escalated_from:
        context_data["escalated_from"] = request.escalated_from
        recorded = RowDecision.model_validate(recorded.model_dump() | {"escalated_from": request.escalated_from})
    return QueueRow(
        id=row_id,
        source_id=request.source_id,
        notification_type=str(notification_type),
        delivery_method=str(channel),
        recipient_id=user_id,
        address=channel_address(user, channel),
        template_name=fields["template_name"],
        decision=recorded,
        context_data=context_data,
        max_retries=settings.notification_retry_attempts,
        scheduled_at=now,
        workflow_id=request.workflow_id,
        event_id=request.event.event_id if request.event else None,
        issue_id=issue["id"] if issue else request.issue_id,
        subject=fields.get("subject"),
        content=fields.get("content", ""),
        html_content=fields.get("html_content"),
        status=str(status),
        error_message=reason,
        variant=variant,
    )


def _in_experiment(
    experiment: RunningExperiment, user_id: str, critical: bool, recorded: RowDecision, now: datetime
) -> tuple[dict[str, TemplateSource] | None, str | None, DeliveryStatus, str | None, RowDecision]:
    """A row to be sent that a running experiment covers: the arm's template version (to render instead of the
    active one), or — held out — skipped. Critical notifications are never held out: they go with the active
    template, outside the experiment. Returns (templates, variant, status, reason, decision)."""
    arm = experiment.arm_of(user_id)
    if arm is None and critical:
        return None, None, DeliveryStatus.PENDING, None, recorded
    note: dict[str, Any] = {"id": experiment.id, "name": experiment.name, "arm": arm.name if arm else HOLDOUT}
    if arm is None:
        reason = f"held out of experiment {experiment.name}"
        return (
            None,
            HOLDOUT,
            DeliveryStatus.CANCELLED,
            reason,
            RowDecision(outcome=Outcome.SKIPPED, reason=reason, at=now, experiment=note),
        )
    note["template_version"] = arm.template.version
    decided = RowDecision.model_validate(recorded.model_dump() | {"experiment": note})
    return {arm.template.name: arm.template}, arm.name, DeliveryStatus.PENDING, None, decided


def template_context(
    request: NotificationRequest,
    notification_type,
    user: UserRow,
    issue: dict[str, Any] | None,
    unsubscribe: str | None,
    settings: Settings,
) -> dict[str, Any]:
    """What every template sees (send-test fills the issue and data with samples)."""
    event = request.event
    base = sample_context(str(notification_type)) if request.sample else {}
    if request.sample:
        issue = base["issue"]
    return base | {
        "notification_type": str(notification_type),
        "recipient": recipient_context(user, settings),
        "actor": _ref(event.actor) if event else base.get("actor"),
        "issue": issue,
        "changes": {k: v.model_dump(mode="json") for k, v in event.changes.items()}
        if event and event.changes
        else None,
        "comment": event.comment.model_dump(mode="json") if event and event.comment else None,
        "context": event.context if event else {},
        "app_url": settings.app_url,
        "issue_url": issue_link(issue, settings),
        "unsubscribe_url": unsubscribe,
        "data": base.get("data", {}) | request.data,
    }


def issue_context_from_event(event: IssueEvent) -> dict[str, Any]:
    return event.issue.model_dump(mode="json")


def issue_link(issue: dict[str, Any] | None, settings: Settings) -> str | None:
    return f"{settings.app_url.rstrip('/')}/admin/issues/{issue['id']}" if issue else None


def channel_address(user: UserRow, channel: Channel | str) -> str | None:
    if channel == Channel.EMAIL:
        return user.email
    if channel == Channel.SMS:
        return user.phone
    if channel == Channel.PUSH:  # the person's devices (push_subscriptions), looked up at send time
        return user.id if getattr(user, "has_push_subscription", False) else None
    return user.id


def _ref(ref: UserRef | None) -> dict[str, Any] | None:
    return ref.model_dump(mode="json") if ref else None


def subscription_rows(
    request: NotificationRequest, issue: dict[str, Any] | None, subscriptions: list, settings: Settings, now: datetime
) -> list[QueueRow]:
    """One row per active webhook / Slack / Teams subscription that wants one of this notification's types.

    The recipient is the subscription (``recipient_id`` NULL, ``address`` its id); when several of its types
    match, the most specific one (``TYPE_PRECEDENCE``) — one delivery per subscription, as a person gets one
    message. ``content`` is the JSON body every kind is built from (a WEBHOOK sends it as is). Send-test and
    requests limited to other channels reach no subscription.
    """
    if request.sample or request.ignore_preferences:
        return []
    event = request.event
    candidates = derived_types(event) if event else [request.notification_type] if request.notification_type else []
    priority = issue["priority"] if issue else None
    link = issue_link(issue, settings)
    planned: list[QueueRow] = []
    for subscription in subscriptions:
        kind = Channel(subscription.channel)
        if request.channels and kind not in request.channels:
            continue
        wanted = [t for t in candidates if str(t) in subscription.notification_types]
        if not wanted:
            continue
        notification_type = min(
            wanted, key=lambda t: TYPE_PRECEDENCE.index(t) if t in TYPE_PRECEDENCE else len(TYPE_PRECEDENCE)
        )
        critical = is_critical(notification_type, priority, on_call=request.data.get("audience") == "on_call")
        body: dict[str, Any] = {
            "type": str(notification_type),
            "event_id": event.event_id if event else request.source_id,
            "event_type": str(event.type) if event else None,
            "occurred_at": (event.occurred_at if event else now).isoformat(),
            "critical": critical,
            "issue": issue,
            "link": link,
        }
        if not event and request.data:
            body["data"] = request.data
        title = (
            f"{str(notification_type).replace('_', ' ').capitalize()}: {issue['id']} {issue['title']}"
            if issue
            else str(notification_type).replace("_", " ").capitalize()
        )
        planned.append(
            QueueRow(
                source_id=request.source_id,
                notification_type=str(notification_type),
                delivery_method=str(kind),
                recipient_id=None,
                recipient_key=f"subscription:{subscription.id}",
                address=str(subscription.id),
                template_name=f"{notification_type}.{kind}",
                decision=RowDecision(
                    outcome=Outcome.SEND,
                    reason=f"subscription {subscription.id} wants {notification_type}",
                    at=now,
                    frequency=Frequency.IMMEDIATE,
                ),
                context_data={
                    "critical": critical,
                    "run_id": request.run_id,
                    "link": link,
                    "subscription": str(subscription.id),
                },
                max_retries=settings.notification_retry_attempts,
                scheduled_at=now,
                workflow_id=request.workflow_id,
                event_id=event.event_id if event else None,
                issue_id=issue["id"] if issue else request.issue_id,
                subject=title[:255],
                content=json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str),
            )
        )
    return planned
