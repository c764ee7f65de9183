"""NotificationClient: how the issue system hands events to notiflow.

``publish`` validates the event first (an invalid event starts nothing), then
starts ``IssueEventWorkflow`` under the id ``event/{event_id}``. Publishing the
same event again returns the same id and starts nothing new: a running
workflow is reused, a finished one is not run again. The first event stays
authoritative; a different body under an event_id already used raises
``EventConflict`` instead of being dropped without a word.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from notiflow.contracts import Channel, IssueEvent, NotificationType, User, parse_event
from notiflow.keys import (
    ISSUE_EVENT_WORKFLOW,
    NOTIFY_WORKFLOW,
    REDELIVERY_WORKFLOW,
    SYNC_USERS_WORKFLOW,
    directory_sync_workflow_id,
    notify_workflow_id,
    redelivery_workflow_id,
)
from notiflow.runs import Audience, NotificationRequest, RedeliveryFilter, RedeliveryRequest
from notiflow.search import search_attributes
from notiflow.settings import Settings, get_settings
from notiflow.temporal import connect_client

#: Memo key of each event run: SHA-256 of the event as published, to tell a repeat from a conflicting body.
EVENT_HASH_MEMO = "event_sha256"


class EventConflict(Exception):
    """The event_id was already published with a different body; the first one is kept."""

    def __init__(self, event_id: str, workflow_id: str) -> None:
        super().__init__(
            f"event {event_id} was already published with a different body; the first one is kept "
            f"({workflow_id}). Publish a change as a new event with its own event_id"
        )
        self.event_id = event_id
        self.workflow_id = workflow_id


def event_hash(event: IssueEvent) -> str:
    """Of the validated event, so key order and spacing in the JSON make no difference."""
    return hashlib.sha256(event.model_dump_json().encode()).hexdigest()


def event_summary(event: IssueEvent) -> str:
    """One readable line for the web UI (ids and type only: no personal data)."""
    return f"{event.type} · {event.issue.id} · {event.issue.priority}"


class NotificationClient:
    def __init__(self, client: Client, settings: Settings):
        self.temporal = client
        self.settings = settings

    @classmethod
    async def connect(cls, address: str | None = None, *, settings: Settings | None = None) -> NotificationClient:
        settings = settings or get_settings()
        if address:
            settings = settings.model_copy(update={"temporal_address": address})
        return cls(await connect_client(settings), settings)

    async def publish(self, event: IssueEvent | dict[str, Any] | str | bytes) -> str:
        """Start the pipeline for one event; returns its workflow id (idempotent on event_id).

        Raises EventConflict when the event_id was published before with a different body.
        """
        if not isinstance(event, IssueEvent):
            event = parse_event(event)
        digest = event_hash(event)
        try:
            # FAIL rather than USE_EXISTING: a running run must be compared too, and only an error says it exists.
            handle = await self.temporal.start_workflow(
                ISSUE_EVENT_WORKFLOW,
                event,
                id=event.workflow_id,
                task_queue=self.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=search_attributes(
                    issue_id=event.issue.id, notification_type=event.type, priority=event.issue.priority
                ),
                static_summary=event_summary(event),
                memo={EVENT_HASH_MEMO: digest},
            )
            return handle.id
        except WorkflowAlreadyStartedError:
            first = await self.temporal.get_workflow_handle(event.workflow_id).describe()
            # Runs started before hashes were recorded have none: they are taken as repeats, as they used to be.
            if await first.memo_value(EVENT_HASH_MEMO, digest) != digest:
                raise EventConflict(event.event_id, event.workflow_id) from None
            return event.workflow_id

    async def send_test(
        self, *, notification_type: str, recipient_id: str, channel: str, requested_by: str | None = None
    ) -> str:
        """Deliver one sample notification to one person through the real pipeline; returns the workflow id."""
        source_id = f"send-test-{uuid.uuid4().hex[:12]}"
        request = NotificationRequest(
            source_id=source_id,
            notification_type=NotificationType(notification_type),
            audience=Audience(user_ids=[recipient_id]),
            channels=[Channel(channel)],
            ignore_preferences=True,
            sample=True,
            data={"requested_by": requested_by},
        )
        handle = await self.temporal.start_workflow(
            NOTIFY_WORKFLOW,
            request,
            id=notify_workflow_id(source_id),
            task_queue=self.settings.task_queue,
            search_attributes=search_attributes(notification_type=str(notification_type)),
            static_summary=f"send-test · {notification_type} · {channel}",
        )
        return handle.id

    async def redeliver(self, filter: RedeliveryFilter, *, requested_by: str, request_id: str | None = None) -> str:
        """Send matching FAILED rows again (same Message-IDs); returns the workflow id ``redeliver/{request_id}``.

        The same ``request_id`` again returns the same run and sends nothing more; without one, each call is new.
        """
        request = RedeliveryRequest(request_id=request_id or uuid.uuid4().hex, requested_by=requested_by, filter=filter)
        workflow_id = redelivery_workflow_id(request.request_id)
        try:
            await self.temporal.start_workflow(
                REDELIVERY_WORKFLOW,
                request,
                id=workflow_id,
                task_queue=self.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=search_attributes(
                    issue_id=filter.issue_id, notification_type=filter.notification_type
                ),
                static_summary=f"redelivery · asked by {requested_by}",
            )
        except WorkflowAlreadyStartedError:
            pass
        return workflow_id

    async def sync_users(self, users: list[User]) -> int:
        """Upsert directory entries (roles, on-call, locale, time zone, quiet hours)."""
        return await self.temporal.execute_workflow(
            SYNC_USERS_WORKFLOW,
            list(users),
            result_type=int,
            id=directory_sync_workflow_id(_users_digest(users)),
            task_queue=self.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"directory sync · {len(users)} users",
        )


def _users_digest(users: list[User]) -> str:
    import hashlib

    blob = "".join(u.model_dump_json() for u in users).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
