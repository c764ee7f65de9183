"""SQL of the experiments routes: per-arm counts over notification_queue ⨝ engagement_events in one query."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

#: One row per arm (``notification_queue.variant``) of one experiment (``decision.experiment.id``): rows planned,
#: delivered (SENT), and rows with each engagement kind; the goal counts a delivered row whose goal event came
#: within ``window_hours`` of ``sent_at``. Machine opens (``detail.machine`` without a later human open) count
#: for nothing.
ARM_COUNTS = text(
    """
    SELECT q.variant AS arm,
           count(DISTINCT q.id) AS sent,
           count(DISTINCT q.id) FILTER (WHERE q.status = 'SENT') AS delivered,
           count(DISTINCT e.queue_id) FILTER (WHERE e.kind = 'SEEN') AS seen,
           count(DISTINCT e.queue_id) FILTER (WHERE e.kind = 'OPENED') AS opened,
           count(DISTINCT e.queue_id) FILTER (WHERE e.kind = 'READ') AS read,
           count(DISTINCT e.queue_id) FILTER (WHERE e.kind = 'CLICKED') AS clicked,
           count(DISTINCT e.queue_id) FILTER (
               WHERE q.status = 'SENT' AND e.kind = :goal
                 AND e.occurred_at <= q.sent_at + make_interval(hours => :window_hours)
           ) AS goal
      FROM notification_queue q
      LEFT JOIN engagement_events e
        ON e.queue_id = q.id
       AND NOT (coalesce(e.detail ->> 'machine', 'false') = 'true' AND e.detail ->> 'human_at' IS NULL)
     WHERE q.variant IS NOT NULL
       AND q.decision -> 'experiment' ->> 'id' = :experiment_id
     GROUP BY q.variant
    """
)


@dataclass(frozen=True)
class ArmCounts:
    sent: int = 0
    delivered: int = 0
    seen: int = 0
    opened: int = 0
    read: int = 0
    clicked: int = 0
    goal: int = 0


async def arm_counts(
    session: AsyncSession, experiment_id: uuid.UUID, goal: str, window_hours: int
) -> dict[str, ArmCounts]:
    rows = await session.execute(
        ARM_COUNTS, {"experiment_id": str(experiment_id), "goal": goal, "window_hours": window_hours}
    )
    return {r["arm"]: ArmCounts(**{k: v for k, v in r.items() if k != "arm"}) for r in rows.mappings()}
