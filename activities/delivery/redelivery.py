"""Redelivery: an operator's request turns matching FAILED rows back into PENDING ones to send again.

Each row keeps its id, so the resent mail carries the same Message-ID as the
first attempt. The request is idempotent on its id: the rows it took are marked
with it, so a retried activity finds them again instead of finding nothing,
and the audit trail gets one entry per request.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import and_, case, cast, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.delivery.planning import empty_plan
from activities.delivery.queries import write_logs
from activities.delivery.rows import Outcome, RowDecision, log_entry, superseding
from activities.implements import implements
from notiflow.audit import record_audit
from notiflow.contracts import Channel, DeliveryStatus
from notiflow.models import AuditLogRow, NotificationQueueRow
from notiflow.runs import RedeliveryRequest
from notiflow.settings import Settings
from workflows.delivery import interface
from workflows.delivery.types import Delivery, Requeued

#: Rows one request re-queues at most (its plan travels in the workflow history); run another for the rest.
MAX_ROWS_PER_REQUEST = 5_000
AUDIT_ACTION = "queue.redeliver"


class RedeliveryActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self.sessions = sessions
        self.settings = settings

    @implements(interface.requeue_failed)
    async def requeue_failed(self, request: RedeliveryRequest) -> Requeued:
        """FAILED rows matching the filter become PENDING, marked with the request; logged and audited."""
        q = NotificationQueueRow
        f = request.filter
        matching = [
            q.status == DeliveryStatus.FAILED,
            q.content != "",
        ]  # never rendered: fix the template, reset the run
        for column, value in (
            (q.issue_id, f.issue_id),
            (q.delivery_method, f.channel),
            (q.notification_type, f.notification_type),
            (q.recipient_id, f.recipient_id),
            (q.workflow_id, f.workflow_id),
        ):
            if value is not None:
                matching.append(column == str(value))
        if f.created_from is not None:
            matching.append(q.created_at >= f.created_from)
        if f.created_to is not None:
            matching.append(q.created_at < f.created_to)
        taken_before = and_(
            q.context_data["redelivery"].astext == request.request_id, q.status == DeliveryStatus.PENDING
        )
        requeued = RowDecision(
            outcome=Outcome.REQUEUED,
            reason=f"redelivery {request.request_id} asked by {request.requested_by}",
            at=datetime.now(timezone.utc),
            requeued_by=request.requested_by,
            redelivery=request.request_id,
        )
        async with self.sessions.begin() as session:
            chosen = (
                select(q.id)
                .where(or_(and_(*matching), taken_before))
                .order_by(q.created_at, q.id)
                .limit(MAX_ROWS_PER_REQUEST)
                .with_for_update(skip_locked=True)
            )
            rows = (
                await session.execute(
                    update(q)
                    .where(q.id.in_(chosen.scalar_subquery()))
                    .values(
                        status=str(DeliveryStatus.PENDING),
                        error_message=None,
                        workflow_id=request.workflow_id,
                        context_data=func.coalesce(q.context_data, cast(literal("{}"), JSONB)).op("||")(
                            func.jsonb_build_object("redelivery", request.request_id)
                        ),
                        decision=_requeued(q.decision, requeued),
                    )
                    .returning(q.id, q.delivery_method, q.recipient_id, q.notification_type, q.status, q.workflow_id)
                )
            ).all()
            first_time = (
                await session.execute(
                    select(func.count())
                    .select_from(AuditLogRow)
                    .where(AuditLogRow.action == AUDIT_ACTION, AuditLogRow.target == request.request_id)
                )
            ).scalar_one() == 0
            if first_time:
                await write_logs(session, [log_entry(r.id, r, "REQUEUED", error=requeued.reason) for r in rows])
                await record_audit(
                    session,
                    actor=request.requested_by,
                    action=AUDIT_ACTION,
                    target=request.request_id,
                    details={
                        "filter": f.model_dump(mode="json", exclude_none=True),
                        "requeued": len(rows),
                        "workflow_id": request.workflow_id,
                    },
                )
        plan = empty_plan(self.settings)
        plan.deliveries = [Delivery(queue_id=str(r.id), channel=Channel(r.delivery_method)) for r in rows]
        return Requeued(plan=plan, requeued=len(rows))

    def activities(self) -> list:
        return [self.requeue_failed]


def _requeued(current, requeued: RowDecision):
    """The REQUEUED decision, keeping the one it replaces as ``previous`` (a retried request keeps its own)."""
    return case(
        (current["redelivery"].astext == requeued.redelivery, current),
        else_=superseding(current, requeued),
    )
