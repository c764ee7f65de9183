"""Summary queries over a million events (DESIGN §9: ≤ 1 s).

    python -m bench.summary [--events 1000000] [--issues 200000] [--runs 20]

Fills a fresh database with issues and events spread over 90 days
(server-side generate_series), then times the summary activity for a daily and
a weekly period and prints p50 / max beside the target.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import datetime, timezone

from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from activities.summary.activities import SummaryActivities
from notiflow.contracts import NotificationType
from notiflow.db import make_engine, make_sessionmaker
from notiflow.settings import Settings
from workflows.summary.types import SummaryPeriod
from tests.services import migrated_database

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


async def main(events: int, issues: int, runs: int) -> None:
    async with migrated_database("notiflow_bench_summary") as url:
        engine = make_engine(url, pool_size=2)
        now = datetime.now(timezone.utc)
        started = time.perf_counter()
        async with engine.begin() as conn:
            for statement in FILL:
                await conn.execute(text(statement), {"now": now, "issues": issues, "events": events})
        print(f"filled {issues:,} issues and {events:,} events in {time.perf_counter() - started:.1f} s")
        summary = SummaryActivities(make_sessionmaker(engine), Settings(database_url=url))
        print(f"{'summary':28} {'p50 s':>8} {'max s':>8}   target")
        for report in (NotificationType.DAILY_ISSUE_SUMMARY, NotificationType.WEEKLY_ISSUE_REPORT):
            samples = []
            for _ in range(runs):
                begin = time.perf_counter()
                await ActivityEnvironment().run(summary.compute_summary, SummaryPeriod(report=report, period_end=now))
                samples.append(time.perf_counter() - begin)
            print(f"{report:28} {statistics.median(samples):8.3f} {max(samples):8.3f}   ≤ 1 s")
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--issues", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.issues, args.runs))
