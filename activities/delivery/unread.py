"""Escalation on unread, the database side: which types are watched, and who has not read at the deadline.

``watches_for`` runs inside the plan's transaction (one query for the rules of the types planned);
``find_unread`` runs once per deadline. "Read" is an in-app row marked read, or any READ / CLICKED
engagement on any of the person's rows of that notification — whichever channel they used.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.delivery.rows import QueueRow, dedupe_key
from activities.implements import implements
from notiflow.contracts import Channel, DeliveryStatus, NotificationType, is_closed
from notiflow.engagement import EngagementKind
from notiflow.keys import unread_workflow_id
from notiflow.models import EngagementEventRow, InAppNotificationRow, IssueRow, NotificationQueueRow, ReadEscalationRow
from notiflow.runs import NotificationRequest
from notiflow.search import search_attributes
from notiflow.settings import Settings
from workflows.delivery import interface
from workflows.delivery.types import Unread, UnreadWatch
from workflows.delivery.unread import UnreadEscalationWorkflow

#: Engagement that means the person read it (an open may be a machine: it does not count).
READ_KINDS = (EngagementKind.READ, EngagementKind.CLICKED)
#: A row that reached (or will reach, past quiet hours) the person: what they could read.
DELIVERED = {str(DeliveryStatus.PENDING), str(DeliveryStatus.SENT)}


async def watches_for(
    session: AsyncSession, request: NotificationRequest, planned: Iterable[QueueRow]
) -> list[UnreadWatch]:
    """One watch per planned type whose rule is on: its people who were sent it (not put into a digest).

    An escalation is never watched again.
    """
    if request.escalated_from:
        return []
    people: dict[str, dict[str, None]] = defaultdict(dict)  # per type, its people once each, in plan order
    for row in planned:
        if row.recipient_id and row.status in DELIVERED and not row.decision.digest:
            people[row.notification_type][row.recipient_id] = None
    if not any(people.values()):
        return []
    rules = await session.scalars(
        select(ReadEscalationRow).where(
            ReadEscalationRow.enabled.is_(True), ReadEscalationRow.notification_type.in_(list(people))
        )
    )
    return [
        UnreadWatch(
            request=request,
            notification_type=NotificationType(rule.notification_type),
            recipient_ids=list(people[rule.notification_type]),
            after_minutes=rule.after_minutes,
            channel=Channel(rule.channel),
        )
        for rule in rules
        if people[rule.notification_type]
    ]


class UnreadActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings, client: Client) -> None:
        self.sessions = sessions
        self.settings = settings
        self.client = client

    @implements(interface.start_unread_watches)
    async def start_unread_watches(self, watches: list[UnreadWatch]) -> int:
        started = 0
        for watch in watches:
            try:
                await self.client.start_workflow(
                    UnreadEscalationWorkflow.run,
                    watch,
                    id=unread_workflow_id(watch.request.source_id, watch.notification_type, watch.part),
                    task_queue=self.settings.task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=search_attributes(
                        issue_id=watch.issue_id, notification_type=watch.notification_type
                    ),
                    static_summary=f"unread {watch.notification_type} → {watch.channel} after {watch.after_minutes} min",
                )
                started += 1
            except WorkflowAlreadyStartedError:
                pass
        return started

    @implements(interface.find_unread)
    async def find_unread(self, watch: UnreadWatch) -> Unread:
        async with self.sessions() as session:
            if watch.issue_id:
                status = await session.scalar(select(IssueRow.status).where(IssueRow.id == watch.issue_id))
                if status is not None and is_closed(status):
                    return Unread(issue_closed=True)
            keys = [
                dedupe_key(watch.request.source_id, person, channel, watch.notification_type)
                for person in watch.recipient_ids
                for channel in Channel
            ]
            queue = NotificationQueueRow
            readers = set(
                await session.scalars(
                    select(queue.recipient_id).where(
                        queue.dedupe_key.in_(keys),
                        or_(*read_or_clicked(queue)),
                    )
                )
            )
        return Unread(recipient_ids=[p for p in watch.recipient_ids if p not in readers])

    def activities(self) -> list:
        return [self.start_unread_watches, self.find_unread]


def read_or_clicked(queue: type[NotificationQueueRow]) -> list:
    """Conditions on a queue row meaning its person read it."""
    return [
        exists().where(InAppNotificationRow.queue_id == queue.id, InAppNotificationRow.read_at.is_not(None)),
        exists().where(
            EngagementEventRow.queue_id == queue.id, EngagementEventRow.kind.in_([str(k) for k in READ_KINDS])
        ),
    ]
