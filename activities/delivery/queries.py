"""SQL of the delivery feature: the event and issue snapshot, recipients, preferences, queue rows and logs.

Idempotency lives here: one ``notification_queue`` row per (source, type,
recipient, channel) via ``dedupe_key``, so a duplicate event or a retried plan
finds the rows that exist instead of queueing them again.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, DateTime, Row, and_, bindparam, case, cast, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from activities.delivery.rows import QueueRow, log_entry
from notiflow.contracts import Channel, DeliveryStatus, EventType, Frequency, IssueEvent
from notiflow.directory import DEFAULT_LOCALE
from notiflow.models import (
    IssueEventRow,
    IssueRow,
    NotificationLogRow,
    NotificationPreferenceRow,
    NotificationQueueRow,
    UserRow,
    WebhookSubscriptionRow,
    table,
)
from workflows.delivery.rules import Directory, Preference
from workflows.delivery.types import BatchResult, Delivery, DeliveryPage, PageCursor

#: Per person, by the (recipient_id, created_at) index: a probe per person however many rows the hour holds. An
#: ``IN (…)`` filter over the hour's rows compared every row with every id instead — 3.9 s for a slice of 2,000
#: people once a large plan had queued 100,000 rows in its own transaction (statistics cannot see them yet).
_RECENT_IMMEDIATE = text(
    """
    SELECT person.id, counted.delivery_method, counted.n
    FROM unnest(CAST(:people AS varchar[])) AS person(id)
    CROSS JOIN LATERAL (
        SELECT q.delivery_method, count(*) AS n
        FROM notification_queue q
        WHERE q.recipient_id = person.id AND q.created_at > :since AND q.status IN ('PENDING', 'SENT')
          AND q.context_data ->> 'digest' IS NULL
        GROUP BY q.delivery_method
    ) AS counted
    """
)


async def recent_immediate_counts(session: AsyncSession, user_ids: list[str], now: datetime) -> Counter:
    """(recipient, channel) → notifications queued for immediate delivery in the hour before ``now`` (rate cap)."""
    if not user_ids:
        return Counter()
    rows = await session.execute(_RECENT_IMMEDIATE, {"people": user_ids, "since": now - timedelta(hours=1)})
    return Counter({(user_id, channel): count for user_id, channel, count in rows})


def attempt_log(
    row: NotificationQueueRow, status: DeliveryStatus, attempt: int, sent_at, error: str | None
) -> dict[str, Any]:
    """One delivery attempt's notification_logs row (values for ``write_logs``)."""
    return log_entry(row.id, row, status, attempt=attempt, sent_at=sent_at, error=error)


async def write_logs(session: AsyncSession, logs: list[dict[str, Any]]) -> None:
    """Core executemany: the ORM unit of work costs more than the delivery itself at fan-out."""
    if logs:
        await session.execute(insert(table(NotificationLogRow)), logs)


async def issue_context_from_db(session: AsyncSession, issue_id: str) -> dict[str, Any] | None:
    issue = await session.get(IssueRow, issue_id)
    if issue is None:
        return None
    people = await users_by_id(session, [i for i in (issue.reporter_id, issue.assignee_id) if i])

    def person(user_id):
        user = people.get(user_id)
        return {"id": user.id, "name": user.name, "email": user.email} if user else None

    return {
        "id": issue.id,
        "title": issue.title,
        "description": issue.description,
        "category": issue.category,
        "priority": issue.priority,
        "status": issue.status,
        "reporter": person(issue.reporter_id),
        "assignee": person(issue.assignee_id),
        "is_auto_reported": issue.is_auto_reported,
        "created_at": issue.created_at.isoformat(),
        "resolution_notes": issue.resolution_notes,
    }


#: The statements of ``record_event``, built once: building an ``insert … on conflict`` anew for every event
#: (SQLAlchemy's cache key, the ``excluded`` columns) was ~40 % of a small plan's CPU (bench/PROFILE.md).
_EVENT = insert(IssueEventRow).on_conflict_do_nothing(index_elements=["event_id"])
_PEOPLE = insert(UserRow)
#: An event may introduce a person and fill their blanks, never overwrite the directory: one event with a wrong
#: address must not redirect someone's notifications (sync_users / PUT /users own it). No write if nothing is blank.
_PEOPLE = _PEOPLE.on_conflict_do_update(
    index_elements=["id"],
    set_={
        column: func.coalesce(getattr(UserRow, column), getattr(_PEOPLE.excluded, column))
        for column in ("email", "phone")
    },
    where=or_(
        and_(UserRow.email.is_(None), _PEOPLE.excluded.email.is_not(None)),
        and_(UserRow.phone.is_(None), _PEOPLE.excluded.phone.is_not(None)),
    ),
)
_ISSUE = insert(IssueRow)
_SNAPSHOT = (
    "title",
    "description",
    "category",
    "priority",
    "status",
    "reporter_id",
    "assignee_id",
    "is_auto_reported",
    "resolution_notes",
    "created_at",
    "last_event_at",
)
#: The newest event's snapshot wins; a resolution is kept until an ISSUE_REOPENED event clears it.
_ISSUE = _ISSUE.on_conflict_do_update(
    index_elements=["id"],
    set_={
        **{column: getattr(_ISSUE.excluded, column) for column in _SNAPSHOT},
        "resolved_at": case(
            (bindparam("reopened", type_=Boolean), None),
            else_=func.coalesce(_ISSUE.excluded.resolved_at, IssueRow.resolved_at),
        ),
    },
    where=IssueRow.last_event_at <= _ISSUE.excluded.last_event_at,
)


async def record_event(session: AsyncSession, event: IssueEvent, workflow_id: str | None) -> None:
    """Store the event (once), the people it mentions (one statement), and the issue's newest snapshot."""
    issue = event.issue
    await session.execute(
        _EVENT,
        {
            "event_id": event.event_id,
            "type": str(event.type),
            "issue_id": issue.id,
            "actor_id": event.actor.id if event.actor else None,
            "occurred_at": event.occurred_at,
            "workflow_id": workflow_id,
            "payload": event.model_dump(mode="json"),
        },
    )
    people = {
        r.id: r for r in (event.actor, issue.reporter, issue.assignee, event.comment and event.comment.author) if r
    }
    if people:
        await session.execute(
            _PEOPLE,
            [
                {"id": r.id, "name": r.name, "email": r.email, "phone": r.phone, "locale": r.locale or DEFAULT_LOCALE}
                for r in sorted(people.values(), key=lambda r: r.id)  # one lock order for concurrent events
            ],
        )
    await session.execute(
        _ISSUE,
        {
            "id": issue.id,
            "title": issue.title,
            "description": issue.description,
            "category": issue.category,
            "priority": str(issue.priority),
            "status": str(issue.status),
            "reporter_id": issue.reporter.id if issue.reporter else None,
            "assignee_id": issue.assignee.id if issue.assignee else None,
            "is_auto_reported": issue.is_auto_reported,
            "resolution_notes": issue.resolution_notes,
            "created_at": issue.created_at,
            "last_event_at": event.occurred_at,
            "resolved_at": event.occurred_at if event.type == EventType.ISSUE_RESOLVED else None,
            "reopened": event.type == EventType.ISSUE_REOPENED,
        },
    )


async def admin_ids(session: AsyncSession, *, on_call_only: bool) -> list[str]:
    query = select(UserRow.id).where(UserRow.roles.contains(["admin"]), UserRow.is_active).order_by(UserRow.id)
    if on_call_only:
        query = query.where(UserRow.is_on_call)
    return list((await session.execute(query)).scalars())


async def directory_for(session: AsyncSession, event: IssueEvent) -> Directory:
    admins = (
        await session.execute(
            select(UserRow.id, UserRow.is_on_call)
            .where(UserRow.roles.contains(["admin"]), UserRow.is_active)
            .order_by(UserRow.id)
        )
    ).all()
    commenters: list[str] = []
    if event.type == EventType.ISSUE_COMMENT_ADDED:
        commenters = [
            actor
            for actor in (
                await session.execute(
                    select(IssueEventRow.actor_id)
                    .where(
                        IssueEventRow.issue_id == event.issue.id,
                        IssueEventRow.type == EventType.ISSUE_COMMENT_ADDED,
                        IssueEventRow.occurred_at < event.occurred_at,
                        IssueEventRow.actor_id.is_not(None),
                    )
                    .distinct()
                )
            ).scalars()
            if actor is not None
        ]
    return Directory(
        admins=tuple(a.id for a in admins),
        on_call_admins=tuple(a.id for a in admins if a.is_on_call),
        earlier_commenters=tuple(sorted(commenters)),
    )


async def users_by_id(session: AsyncSession, user_ids: list[str]) -> dict[str, UserRow]:
    if not user_ids:
        return {}
    rows = (await session.execute(select(UserRow).where(UserRow.id.in_(user_ids)))).scalars()
    return {u.id: u for u in rows}


async def preferences_for(session: AsyncSession, user_ids: list[str], types: set[str]):
    if not user_ids:
        return {}
    rows = (
        await session.execute(
            select(NotificationPreferenceRow).where(
                NotificationPreferenceRow.user_id.in_(user_ids), NotificationPreferenceRow.notification_type.in_(types)
            )
        )
    ).scalars()
    return {
        (p.user_id, p.notification_type, p.delivery_method): Preference(p.is_enabled, Frequency(p.frequency))
        for p in rows
    }


async def insert_queue_rows(session: AsyncSession, rows: list[QueueRow]) -> list[Delivery | None]:
    """Insert new rows; for each, a Delivery if it is still to be sent, None if it was handled before.

    A row that exists FAILED from another run of the same workflow (an operator reset
    the run after an outage) is planned afresh: it takes this run's rendering, status
    and decision, keeps its id — hence its Message-ID — and is sent again.
    """
    if not rows:
        return []
    planned = {row.dedupe_key: row for row in rows}
    q = NotificationQueueRow
    await session.execute(
        insert(table(q)).on_conflict_do_nothing(index_elements=["dedupe_key"]), [r.values() for r in rows]
    )
    existing = (
        await session.execute(
            select(
                q.id, q.dedupe_key, q.status, q.delivery_method, q.context_data["run_id"].astext.label("run_id")
            ).where(q.dedupe_key.in_(list(planned)))
        )
    ).all()
    by_key = {e.dedupe_key: e for e in existing}
    status = {key: row.status for key, row in by_key.items()}
    for key, new in planned.items():
        row = by_key[key]
        run_id = new.context_data.get("run_id")
        if row.status == DeliveryStatus.FAILED and run_id and row.run_id != run_id:
            replan = {k: v for k, v in new.values().items() if k not in ("id", "dedupe_key")}
            await session.execute(update(q).where(q.id == row.id, q.status == DeliveryStatus.FAILED).values(replan))
            await write_logs(
                session,
                [
                    log_entry(
                        row.id,
                        new,
                        "REQUEUED",
                        error=f"re-planned by run {run_id} of {new.workflow_id}",
                        run_id=run_id,
                    )
                ],
            )
            status[key] = new.status
    return [
        new.delivery(by_key[key].id) if status[key] == DeliveryStatus.PENDING else None
        for key, new in planned.items()
        if status[key] in (DeliveryStatus.PENDING, DeliveryStatus.SENT)
    ]


async def pending_page(
    session: AsyncSession, source_id: str, page_size: int, after: PageCursor | None = None
) -> DeliveryPage:
    """A page of the source's PENDING rows in the order (quiet hours' end — none first —, id), after ``after``.

    Keyset paging: a row sent, failed or digested meanwhile shifts no other row, and none is read twice.
    The Delivery is built from the stored decision, as planning builds it (``QueueRow.delivery``).
    """
    q = NotificationQueueRow
    held = cast(q.decision["held_until"].astext, DateTime(timezone=True))
    query = select(
        q.id, q.delivery_method, held.label("held"), q.decision["frequency"].astext.label("frequency")
    ).where(q.context_data["source_id"].astext == source_id, q.status == DeliveryStatus.PENDING)
    if after is not None and after.held_only:
        query = query.where(
            held.is_not(None),
            func.coalesce(q.decision["frequency"].astext, str(Frequency.IMMEDIATE)) == str(Frequency.IMMEDIATE),
        )
    if after is not None and after.after_id:
        after_id = uuid.UUID(after.after_id)
        if after.after_not_before is None:
            query = query.where(or_(and_(held.is_(None), q.id > after_id), held.is_not(None)))
        else:
            query = query.where(
                or_(held > after.after_not_before, and_(held == after.after_not_before, q.id > after_id))
            )
    rows = (await session.execute(query.order_by(held.asc().nulls_first(), q.id).limit(page_size + 1))).all()
    page = rows[:page_size]
    deliveries = [
        Delivery(
            queue_id=str(r.id),
            channel=Channel(r.delivery_method),
            not_before=r.held,
            frequency=Frequency(r.frequency) if r.frequency else Frequency.IMMEDIATE,
        )
        for r in page
    ]
    following = None
    if len(rows) > page_size:
        last = page[-1]
        following = PageCursor(
            source_id=source_id,
            page_size=page_size,
            after_not_before=last.held,
            after_id=str(last.id),
            held_only=after is not None and after.held_only,
        )
    return DeliveryPage(deliveries=deliveries, next=following)


async def tally(session: AsyncSession, queue_ids: list[str]) -> BatchResult:
    """Final counts over a whole batch, including rows sent by earlier attempts; critical rows that ended FAILED."""
    q = NotificationQueueRow
    ids = [uuid.UUID(i) for i in queue_ids]
    counts = dict((await session.execute(select(q.status, func.count()).where(q.id.in_(ids)).group_by(q.status))).all())
    critical_failed: list[str] = []
    if counts.get(DeliveryStatus.FAILED):
        critical_failed = [
            str(i)
            for i in (
                await session.execute(
                    select(q.id).where(
                        q.id.in_(ids),
                        q.status == DeliveryStatus.FAILED,
                        q.context_data["critical"].as_boolean().is_(True),
                    )
                )
            ).scalars()
        ]
    return BatchResult(
        sent=counts.get(DeliveryStatus.SENT, 0),
        failed=counts.get(DeliveryStatus.FAILED, 0),
        critical_failed=critical_failed,
    )


#: The batch's rows still PENDING, each found by its primary key and its status checked there. Not ``WHERE id =
#: ANY(:ids) AND status = 'PENDING'``: the planner then weighs the pending rows' partial index
#: (``ix_notification_queue_pending_source``) by statistics taken when it was nearly empty (a fresh install, a
#: quiet night) and reads every PENDING row of every plan for each batch of 200 (bench.audience, 20,000 people:
#: PostgreSQL 7 → 22 s of CPU, 45 ms statements). The lateral lookup (kept apart by ``OFFSET 0``) cannot.
#: ``AnswerRecorder`` and ``deliver_in_app`` write their rows the same way.
_TO_SEND = text("""
    SELECT p.* FROM unnest(CAST(:ids AS uuid[])) AS b(id)
     CROSS JOIN LATERAL (SELECT id, delivery_method, address, subject, content, html_content, context_data,
                                issue_id, notification_type
                           FROM notification_queue AS x
                          WHERE x.id = b.id AND x.status = 'PENDING' OFFSET 0) AS p""")


async def pending_rows(session: AsyncSession, queue_ids: list[str]) -> list[Row[Any]]:
    """The batch's rows still to send (a retried batch skips what earlier attempts settled), as plain rows: loading
    ORM objects cost ~0.05 ms per row, none of which sending needs."""
    return list(await session.execute(_TO_SEND, {"ids": queue_ids}))


async def settle_pending(session: AsyncSession, queue_ids: list[str], **values: Any) -> list[NotificationQueueRow]:
    """The batch's rows still PENDING take ``values`` (a final status); returns them. Settled rows stay as they are."""
    q = NotificationQueueRow
    statement = (
        update(q)
        .where(q.id.in_([uuid.UUID(i) for i in queue_ids]), q.status == DeliveryStatus.PENDING)
        .values(**values)
        .returning(q)
    )
    return list((await session.execute(statement)).scalars())


async def fail_pending(session: AsyncSession, queue_ids: list[str], reason: str) -> None:
    """Rows still PENDING become FAILED with the reason, each with its attempt logged."""
    rows = await settle_pending(session, queue_ids, status=str(DeliveryStatus.FAILED), error_message=reason)
    await write_logs(session, [attempt_log(r, DeliveryStatus.FAILED, r.retry_count + 1, None, reason) for r in rows])


async def active_subscriptions(session: AsyncSession) -> list:
    """Active webhook / Slack / Teams subscriptions: (id, channel, notification_types) — the plan's Snapshot."""
    w = WebhookSubscriptionRow
    return list(
        (
            await session.execute(
                select(w.id, w.channel, w.notification_types).where(w.is_active).order_by(w.created_at, w.id)
            )
        ).all()
    )
