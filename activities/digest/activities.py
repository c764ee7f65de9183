"""Digest activities: hand queue rows to DigestWorkflow, compose the digest, settle its items.

The status model is described in ``workflows/digest.py``: items stay PENDING
until their digest is delivered, then take its outcome.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.delivery.planning import channel_address, empty_plan
from activities.delivery.queries import attempt_log, insert_queue_rows, write_logs
from activities.delivery.rows import Outcome, QueueRow, RowDecision, cannot_send, superseding
from activities.implements import implements
from activities.snapshot import Snapshot
from notiflow.contracts import DeliveryStatus, is_closed
from notiflow.engagement import RowLink, save_row_links, wrap_row_link
from notiflow.keys import digest_workflow_id
from notiflow.models import (
    IssueEventRow,
    IssueRow,
    NotificationPreferenceRow,
    NotificationQueueRow,
    UserRow,
    table,
)
from notiflow.search import search_attributes
from notiflow.settings import Settings
from notiflow.templates.store import load_active_templates, recipient_context, render_for
from workflows.delivery import interface as delivery_interface
from workflows.delivery.types import DigestRouting
from workflows.digest import interface as digest_interface
from workflows.digest.rules import next_digest_at
from workflows.digest.types import (
    DigestAdditions,
    DigestComposition,
    DigestFlush,
    DigestInput,
    DigestItem,
    DigestSettle,
)
from workflows.digest.workflows import DigestWorkflow

DIGEST = "DIGEST"


class DigestActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings, client: Client):
        self.sessions = sessions
        self.settings = settings
        self.client = client
        self.templates = Snapshot(load_active_templates)

    @implements(delivery_interface.route_to_digest)
    async def route_to_digest(self, routing: DigestRouting) -> int:
        """Give each row the time its digest goes out and signal-with-start its recipient's DigestWorkflow."""
        frequency = {item.queue_id: item.frequency for item in routing.items}
        q, pref = NotificationQueueRow, NotificationPreferenceRow
        async with self.sessions.begin() as session:
            rows = (
                await session.execute(
                    select(
                        q.id,
                        q.recipient_id,
                        UserRow.timezone,
                        UserRow.quiet_hours_start,
                        UserRow.quiet_hours_end,
                        pref.digest_hour,
                    )
                    .join(UserRow, UserRow.id == q.recipient_id)
                    .outerjoin(
                        pref,
                        and_(
                            pref.user_id == q.recipient_id,
                            pref.notification_type == q.notification_type,
                            pref.delivery_method == q.delivery_method,
                        ),
                    )
                    .where(q.id.in_([uuid.UUID(i) for i in frequency]), q.status == DeliveryStatus.PENDING)
                )
            ).all()
            by_user: dict[str, list[DigestItem]] = defaultdict(list)
            flush_times: list[dict[str, Any]] = []
            for row in rows:
                flush_at = next_digest_at(
                    frequency[str(row.id)],
                    routing.as_of,
                    row.timezone or self.settings.timezone,
                    digest_hour=row.digest_hour,
                    quiet_start=row.quiet_hours_start,
                    quiet_end=row.quiet_hours_end,
                )
                by_user[row.recipient_id].append(
                    DigestItem(queue_id=str(row.id), frequency=frequency[str(row.id)], flush_at=flush_at)
                )
                flush_times.append({"row_id": row.id, "flush_at": flush_at})
            if flush_times:
                await session.execute(
                    update(table(q))
                    .where(table(q).c.id == bindparam("row_id"))
                    .values(scheduled_at=bindparam("flush_at")),
                    flush_times,
                )
        for user_id, items in by_user.items():
            await self.client.start_workflow(
                DigestWorkflow.run,
                DigestInput(user_id=user_id),
                id=digest_workflow_id(user_id),
                task_queue=self.settings.task_queue,
                start_signal="add",
                start_signal_args=[DigestAdditions(items=items)],
                search_attributes=search_attributes(notification_type=DIGEST),
                static_summary=f"digest · {user_id}",
            )
        return len(rows)

    @implements(digest_interface.compose_digest)
    async def compose_digest(self, flush: DigestFlush) -> DigestComposition:
        """One DIGEST queue row per channel listing the items still pending; issues resolved since show as resolved."""
        plan = empty_plan(self.settings)
        q = NotificationQueueRow
        async with self.sessions.begin() as session:
            items = (
                (
                    await session.execute(
                        select(q).where(
                            q.id.in_([uuid.UUID(i) for i in flush.queue_ids]),
                            q.status == DeliveryStatus.PENDING,
                            q.recipient_id == flush.user_id,
                        )
                    )
                )
                .scalars()
                .all()
            )
            if not items:
                return DigestComposition(digest_ids=[], plan=plan)
            user = await session.get(UserRow, flush.user_id)
            if user is None or not user.is_active:
                await session.execute(
                    update(q)
                    .where(q.id.in_([i.id for i in items]))
                    .values(
                        status=str(DeliveryStatus.CANCELLED),
                        error_message="recipient is inactive",
                        decision=superseding(
                            q.decision,
                            RowDecision(
                                outcome=Outcome.SKIPPED,
                                reason="the digest found the recipient inactive",
                                at=datetime.now(timezone.utc),
                            ),
                        ),
                    )
                )
                return DigestComposition(digest_ids=[], plan=plan)
            entries = await self._entries(session, items)
            by_channel: dict[str, list[NotificationQueueRow]] = defaultdict(list)
            for item in items:
                by_channel[item.delivery_method].append(item)
            templates = await self.templates.get(session)
            rows = [
                self._digest_row(flush, user, channel, members, entries, templates, plan)
                for channel, members in sorted(by_channel.items())
            ]
            deliveries = await insert_queue_rows(session, rows)
            digest_ids = [
                str(i)
                for i in (
                    await session.execute(select(q.id).where(q.dedupe_key.in_([r.dedupe_key for r in rows])))
                ).scalars()
            ]
        plan.deliveries = [d for d in deliveries if d is not None]
        plan.already_done = sum(1 for d in deliveries if d is None)
        return DigestComposition(digest_ids=digest_ids, plan=plan)

    async def _entries(self, session: AsyncSession, items) -> dict[uuid.UUID, dict[str, Any]]:
        """Each item as the DIGEST template lists it, with its issue's state now."""
        issue_ids = {i.issue_id for i in items if i.issue_id}
        event_ids = {i.event_id for i in items if i.event_id}
        issues = (
            {r.id: r for r in (await session.execute(select(IssueRow).where(IssueRow.id.in_(issue_ids)))).scalars()}
            if issue_ids
            else {}
        )
        occurred = (
            dict(
                (
                    await session.execute(
                        select(IssueEventRow.event_id, IssueEventRow.occurred_at).where(
                            IssueEventRow.event_id.in_(event_ids)
                        )
                    )
                ).all()
            )
            if event_ids
            else {}
        )
        entries = {}
        links: list[RowLink] = []
        for item in items:
            issue = issues.get(item.issue_id)
            # each item's link through /r/{code}, the click counted on the item's own row (engagement)
            issue_url, link = wrap_row_link(
                self.settings, item.id, item.delivery_method, (item.context_data or {}).get("link")
            )
            links += [link] if link else []
            entries[item.id] = {
                "notification_type": item.notification_type,
                "issue_id": item.issue_id,
                "title": issue.title if issue else (item.subject or ""),
                "priority": issue.priority if issue else None,
                "occurred_at": (occurred.get(item.event_id) or item.created_at).isoformat(),
                "subject": item.subject or "",
                "issue_url": issue_url,
                "resolved": bool(issue and is_closed(issue.status)),
            }
        await save_row_links(session, links)
        return entries

    def _digest_row(self, flush: DigestFlush, user: UserRow, channel: str, members, entries, templates, plan):
        settings = self.settings
        listed = sorted((entries[m.id] for m in members), key=lambda e: e["occurred_at"])
        context = {
            "notification_type": DIGEST,
            "recipient": recipient_context(user, settings),
            "actor": None,
            "issue": None,
            "changes": None,
            "comment": None,
            "context": {},
            "app_url": settings.app_url,
            "issue_url": None,
            "unsubscribe_url": None,
            "data": {"period": str(flush.period), "items": listed},
        }
        outcome = render_for(templates, DIGEST, channel, user.locale, context)
        status = DeliveryStatus.FAILED if outcome.failure else DeliveryStatus.PENDING
        if status == DeliveryStatus.FAILED:
            plan.failed[channel] = plan.failed.get(channel, 0) + 1
        now = datetime.now(timezone.utc)
        return QueueRow(
            source_id=f"digest/{flush.user_id}/{flush.digest_id}",
            notification_type=DIGEST,
            delivery_method=channel,
            recipient_id=user.id,
            address=channel_address(user, channel),
            decision=cannot_send(outcome.failure, now)
            if outcome.failure
            else RowDecision(
                outcome=Outcome.SEND,
                reason=f"the {str(flush.period).lower()} digest of {len(members)} notification(s)",
                at=now,
            ),
            context_data={
                "critical": False,
                "recipient_name": user.name,
                "link": None,
                "unsubscribe_url": None,
                "digest_items": [str(m.id) for m in members],
                "period": str(flush.period),
            },
            max_retries=settings.notification_retry_attempts,
            scheduled_at=now,
            workflow_id=digest_workflow_id(user.id),
            status=str(status),
            error_message=outcome.failure,
            **outcome.row_fields(),
        )

    @implements(digest_interface.settle_digest)
    async def settle_digest(self, settle: DigestSettle) -> int:
        """Items take their digest's outcome: SENT "in digest <id>", or FAILED with its error."""
        q = NotificationQueueRow
        settled = 0
        async with self.sessions.begin() as session:
            digests = (
                (await session.execute(select(q).where(q.id.in_([uuid.UUID(d) for d in settle.digest_ids]))))
                .scalars()
                .all()
            )
            for digest in digests:
                values: dict[str, Any]
                if digest.status == DeliveryStatus.SENT:
                    values = {
                        "status": str(DeliveryStatus.SENT),
                        "sent_at": digest.sent_at,
                        "provider_response": f"in digest {digest.id}",
                    }
                elif digest.status == DeliveryStatus.FAILED:
                    values = {
                        "status": str(DeliveryStatus.FAILED),
                        "error_message": f"digest {digest.id} failed: {digest.error_message}",
                    }
                else:
                    continue
                items = (
                    (
                        await session.execute(
                            update(q)
                            .where(
                                q.id.in_([uuid.UUID(i) for i in (digest.context_data or {})["digest_items"]]),
                                q.status == DeliveryStatus.PENDING,
                            )
                            .values(**values)
                            .returning(q)
                        )
                    )
                    .scalars()
                    .all()
                )
                await write_logs(
                    session,
                    [
                        attempt_log(
                            item,
                            DeliveryStatus(values["status"]),
                            1,
                            values.get("sent_at"),
                            values.get("error_message"),
                        )
                        for item in items
                    ],
                )
                settled += len(items)
        return settled

    def activities(self) -> list:
        return [self.route_to_digest, self.compose_digest, self.settle_digest]
