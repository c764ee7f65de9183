"""Summary queries over ten million events (issue 12: the daily summary ≤ 1 s).

    python -m bench.summary [--events 10000000] [--issues 2000000] [--runs 10] [--json FILE]

Fills a fresh database with issues and events spread over 90 days
(server-side generate_series), then times the summary activity for a daily and
a weekly period and prints p50 / max beside the target.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import datetime, timezone

from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from activities.summary.activities import SummaryActivities
from bench.results import measure, report, without_indexes
from notiflow.contracts import NotificationType
from notiflow.db import make_engine, make_sessionmaker
from notiflow.settings import Settings
from tests.services import migrated_database
from workflows.summary.types import SummaryPeriod

FILL = [
    """INSERT INTO issues (id, title, category, priority, status, is_auto_reported, created_at, resolved_at,
                          last_event_at)
       SELECT 'B-' || g, 'Issue ' || g, (ARRAY['HARDWARE','SOFTWARE','NETWORK','PRINTING','OTHER'])[1 + g % 5],
              (ARRAY['CRITICAL','HIGH','MEDIUM','LOW'])[1 + g % 4],
              CASE WHEN g % 3 = 0 THEN 'OPEN' ELSE 'RESOLVED' END, g % 7 = 0,
              CAST(:now AS timestamptz) - make_interval(mins => (g * 37) % (90 * 24 * 60)),
              CASE WHEN g % 3 = 0 THEN NULL
                   ELSE CAST(:now AS timestamptz) - make_interval(mins => (g * 37) % (90 * 24 * 60)) + make_interval(mins => 30 + g % 3000) END,
              CAST(:now AS timestamptz)
       FROM generate_series(1, :issues) g""",
    """INSERT INTO issue_events (id, event_id, type, issue_id, occurred_at, payload)
       SELECT gen_random_uuid(), 'bench-' || g,
              CASE WHEN g % 5 = 0 AND (g / 5) % 3 <> 0 THEN 'ISSUE_RESOLVED' ELSE 'ISSUE_COMMENT_ADDED' END,
              'B-' || (1 + (g / 5) % :issues), CAST(:now AS timestamptz) - make_interval(mins => (g * 13) % (90 * 24 * 60)), '{}'::jsonb
       FROM generate_series(1, :events) g""",
    "ANALYZE",
]


async def main(events: int, issues: int, runs: int) -> list[dict]:
    async with migrated_database("notiflow_bench_summary") as url:
        engine = make_engine(url, pool_size=2)
        now = datetime.now(timezone.utc)
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL synchronous_commit = off"))
            await conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            restore = await without_indexes(conn, ["issues", "issue_events"])
            for statement in FILL[:-1]:
                await conn.execute(text(statement), {"now": now, "issues": issues, "events": events})
            for statement in restore:
                await conn.execute(text(statement))
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE issues"))
            await conn.execute(text("VACUUM ANALYZE issue_events"))
        print(
            f"filled {issues:,} issues and {events:,} events in {time.perf_counter() - started:.1f} s", file=sys.stderr
        )
        summary = SummaryActivities(make_sessionmaker(engine), Settings(database_url=url))
        results = []
        for report in (NotificationType.DAILY_ISSUE_SUMMARY, NotificationType.WEEKLY_ISSUE_REPORT):
            samples = []
            for _ in range(runs):
                begin = time.perf_counter()
                await ActivityEnvironment().run(summary.compute_summary, SummaryPeriod(report=report, period_end=now))
                samples.append(time.perf_counter() - begin)
            name = "daily summary" if report == NotificationType.DAILY_ISSUE_SUMMARY else "weekly report"
            results.append(
                measure(
                    f"{name}, max of {runs}",
                    max(samples),
                    "s",
                    lower_is_better=True,
                    target=1 if report == NotificationType.DAILY_ISSUE_SUMMARY else None,
                    note=f"{events:,} events, {issues:,} issues; p50 {statistics.median(samples):.3f} s",
                )
            )
        await engine.dispose()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--issues", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", help="append the results (one JSON object per line) to this file")
    args = parser.parse_args()
    measured = asyncio.run(main(args.events, args.issues, args.runs))
    report(measured, "summaries", args.json)
