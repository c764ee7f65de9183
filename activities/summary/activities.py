"""The summary activity: one period's figures, computed in SQL over issues and issue_events.

The period ends at the schedule's time (not the worker's clock), so a backfill
reports its own day. "Open" and "overdue" are as of the period's end: created
before it and not resolved by then (an issue closed without a resolve event
counts by its current status).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.implements import implements
from notiflow.contracts import Priority
from notiflow.settings import Settings
from workflows.summary import interface
from workflows.summary.types import SUMMARY_DAYS, CategoryCount, OverdueIssue, SummaryPeriod, SummaryReport

OVERDUE_LISTED = 20
TOP_CATEGORIES = 5

_OPEN_AT_END = """i.created_at < CAST(:end AS timestamptz)
    AND (i.resolved_at >= CAST(:end AS timestamptz)
         OR (i.resolved_at IS NULL AND i.status NOT IN ('RESOLVED', 'CLOSED')))"""

_TOTALS = text("""
WITH new_issues AS (
    SELECT is_auto_reported FROM issues
    WHERE created_at >= CAST(:start AS timestamptz) AND created_at < CAST(:end AS timestamptz)
), resolutions AS (  -- each issue once, at its last resolution inside the period
    SELECT DISTINCT ON (e.issue_id) EXTRACT(EPOCH FROM e.occurred_at - i.created_at) / 3600 AS hours
    FROM issue_events e JOIN issues i ON i.id = e.issue_id
    WHERE e.type = 'ISSUE_RESOLVED'
      AND e.occurred_at >= CAST(:start AS timestamptz) AND e.occurred_at < CAST(:end AS timestamptz)
    ORDER BY e.issue_id, e.occurred_at DESC
)
SELECT (SELECT count(*) FROM new_issues) AS new_count,
       (SELECT count(*) FROM new_issues WHERE is_auto_reported) AS auto_reported_count,
       (SELECT count(*) FROM resolutions) AS resolved_count,
       (SELECT avg(hours) FROM resolutions) AS mean_hours,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) FROM resolutions) AS median_hours
""")

_OPEN_BY_PRIORITY = text(f"SELECT i.priority, count(*) FROM issues i WHERE {_OPEN_AT_END} GROUP BY i.priority")

_OVERDUE = text(f"""
SELECT i.id, i.title, i.priority, EXTRACT(EPOCH FROM CAST(:end AS timestamptz) - i.created_at) / 3600 AS age_hours
FROM issues i JOIN escalation_policies p ON p.priority = i.priority
WHERE {_OPEN_AT_END} AND i.created_at + make_interval(mins => p.due_minutes) < CAST(:end AS timestamptz)
ORDER BY i.created_at, i.id
LIMIT :limit
""")

_TOP_CATEGORIES = text("""
SELECT coalesce(category, 'OTHER') AS category, count(*) AS count FROM issues
WHERE created_at >= CAST(:start AS timestamptz) AND created_at < CAST(:end AS timestamptz)
GROUP BY 1 ORDER BY 2 DESC, 1
LIMIT :limit
""")


def period_start(period: SummaryPeriod, tz_name: str) -> datetime:
    """Whole local days back from the end (a DST change does not shift the window by an hour)."""
    local_end = period.period_end.astimezone(ZoneInfo(tz_name))
    return (local_end - timedelta(days=SUMMARY_DAYS[period.report])).astimezone(timezone.utc)


def _hours(value) -> float | None:
    return None if value is None else round(float(value), 1)


class SummaryActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self.sessions = sessions
        self.settings = settings

    @implements(interface.compute_summary)
    async def compute_summary(self, period: SummaryPeriod) -> SummaryReport:
        """New, resolved, open by priority, overdue, resolution times, categories: the ``data`` of a summary."""
        window = {
            "start": period_start(period, self.settings.timezone),
            "end": period.period_end.astimezone(timezone.utc),
        }
        async with self.sessions() as session:
            totals = (await session.execute(_TOTALS, window)).one()
            open_counts: dict[str, int] = dict((await session.execute(_OPEN_BY_PRIORITY, window)).all())
            overdue = (await session.execute(_OVERDUE, window | {"limit": OVERDUE_LISTED})).all()
            categories = (await session.execute(_TOP_CATEGORIES, window | {"limit": TOP_CATEGORIES})).all()
        return SummaryReport(
            period_start=window["start"],
            period_end=window["end"],
            new_count=totals.new_count,
            resolved_count=totals.resolved_count,
            open_by_priority={str(p): open_counts.get(str(p), 0) for p in Priority},
            overdue=[
                OverdueIssue(id=r.id, title=r.title, priority=r.priority, age_hours=_hours(r.age_hours))
                for r in overdue
            ],
            mean_hours_to_resolve=_hours(totals.mean_hours),
            median_hours_to_resolve=_hours(totals.median_hours),
            top_categories=[CategoryCount(category=r.category, count=r.count) for r in categories],
            auto_reported_count=totals.auto_reported_count,
        )

    def activities(self) -> list:
        return [self.compute_summary]
