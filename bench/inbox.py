"""Inbox and queue pages at ten million in-app rows (issue 12: inbox page p99 ≤ 10 ms; issue 20 §3: the same
for a heavy person with 100,000 rows, first page and unread count).

    python -m bench.inbox [--rows 10000000] [--heavy-rows 100000] [--queue-rows 1000000] [--requests 300]
                          [--json FILE]

Fills a fresh database with in-app notifications and queue rows spread over
one user per 1,000 rows (server-side generate_series), plus one heavy person (u-heavy) holding
``--heavy-rows`` of the ``--rows`` in all, then times the API's first and deep cursor pages and the
unread count in-process (httpx ASGI transport, so no network in the way) and prints p50 / p99 beside
the target. ``--rows 1000000`` (or less) is the quick run; the heavy person keeps their 100,000.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import httpx
from sqlalchemy import text

from bench.results import measure, report, without_indexes
from notiflow.db import make_engine
from notiflow.settings import Settings
from notiflow.tokens import make_api_token
from programs.api.app import create_app
from tests.services import migrated_database

FILL = """
INSERT INTO users (id, name, email, roles)
SELECT 'u-' || g, 'User ' || g, 'user' || g || '@example.mg', CASE WHEN g = 1 THEN '{admin}'::varchar[] ELSE '{}' END
FROM generate_series(1, :users) g;

INSERT INTO notification_queue (id, recipient_id, template_name, delivery_method, subject, content, status,
                                dedupe_key, notification_type, issue_id, created_at)
SELECT gen_random_uuid(), 'u-' || (1 + g % :users), 'ISSUE_CREATED.IN_APP.en', 'IN_APP', 'Issue ' || g, 'body',
       (ARRAY['SENT','SENT','SENT','FAILED'])[1 + g % 4], 'bench|' || g, 'ISSUE_CREATED', 'ISS-' || (g % 5000),
       now() - make_interval(secs => g)
FROM generate_series(1, :queue_rows) g;

INSERT INTO in_app_notifications (id, user_id, notification_type, issue_id, title, body, created_at, read_at)
SELECT gen_random_uuid(), 'u-' || (1 + g % :users), 'ISSUE_CREATED', 'ISS-' || (g % 5000), 'Issue ' || g, 'body',
       now() - make_interval(secs => g), CASE WHEN g % 3 = 0 THEN now() END
FROM generate_series(1, :rows) g;

INSERT INTO users (id, name, email, roles) VALUES ('u-heavy', 'Heavy', 'heavy@example.mg', '{}');

INSERT INTO in_app_notifications (id, user_id, notification_type, issue_id, title, body, created_at, read_at,
                                  archived_at)
SELECT gen_random_uuid(), 'u-heavy', 'ISSUE_CREATED', 'ISS-' || (g % 5000), 'Heavy ' || g, 'body',
       now() - make_interval(secs => g * 7), CASE WHEN g % 3 = 0 THEN now() END, CASE WHEN g % 10 = 0 THEN now() END
FROM generate_series(1, :heavy_rows) g;
"""

#: The first page's query for the heavy person, as fetch_page builds it (EXPLAINed into the bench's log).
HEAVY_PAGE = """
SELECT * FROM in_app_notifications WHERE user_id = 'u-heavy' AND archived_at IS NULL
ORDER BY created_at DESC, id DESC LIMIT 21
"""


async def timed(client: httpx.AsyncClient, url: str, headers: dict, count: int) -> list[float]:
    await client.get(url, headers=headers)  # warm
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.get(url, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return sorted(samples)


async def main(rows: int, queue_rows: int, requests: int, heavy_rows: int = 100_000) -> list[dict]:
    async with migrated_database("notiflow_bench_inbox") as url:
        engine = make_engine(url, pool_size=2)
        # As many notifications per person at every size (1,000, a third of them read): what grows is the
        # table, not one person's inbox (whose unread count each page also returns).
        users = max(1000, rows // 1000)
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL synchronous_commit = off"))
            await conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            statements = [statement for statement in FILL.split(";\n") if statement.strip()]
            await conn.execute(text(statements.pop(0)), {"users": users})
            restore = await without_indexes(conn, ["notification_queue", "in_app_notifications"])
            for statement in statements:
                await conn.execute(
                    text(statement),
                    {
                        k: v
                        for k, v in (
                            ("rows", max(0, rows - heavy_rows)),
                            ("queue_rows", queue_rows),
                            ("users", users),
                            ("heavy_rows", heavy_rows),
                        )
                        if f":{k}" in statement
                    },
                )
            for statement in restore:
                await conn.execute(text(statement))
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("users", "notification_queue", "in_app_notifications", "inbox_counts"):
                await conn.execute(text(f"VACUUM ANALYZE {table}"))
            plan = (await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + HEAVY_PAGE))).scalars().all()
            print("heavy person's first page:\n  " + "\n  ".join(plan), file=sys.stderr)
        await engine.dispose()
        print(
            f"filled {rows:,} inbox rows and {queue_rows:,} queue rows in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )

        settings = Settings(database_url=url, rate_limit_per_minute=1_000_000)
        results = []
        app = create_app(settings)
        user = {"Authorization": f"Bearer {make_api_token(settings.jwt_secret, 'u-7', [], 3600)}"}
        heavy = {"Authorization": f"Bearer {make_api_token(settings.jwt_secret, 'u-heavy', [], 3600)}"}
        admin = {"Authorization": f"Bearer {make_api_token(settings.jwt_secret, 'u-1', ['admin'], 3600)}"}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                page = (await client.get("/api/v1/notifications/inbox?limit=20", headers=user)).json()
                deep_cursor = page.get("next_cursor")
                cases = {
                    "inbox, first page (20)": ("/api/v1/notifications/inbox?limit=20", user),
                    "inbox, heavy person's first page (20)": ("/api/v1/notifications/inbox?limit=20", heavy),
                    "inbox, heavy person's unread count": ("/api/v1/notifications/inbox/unread-count", heavy),
                    "queue (admin), first page (50)": ("/api/v1/notifications/queue?limit=50", admin),
                    "queue filtered by status FAILED": ("/api/v1/notifications/queue?limit=50&status=FAILED", admin),
                }
                if deep_cursor:
                    cases["inbox, next page by cursor"] = (
                        f"/api/v1/notifications/inbox?limit=20&cursor={deep_cursor}",
                        user,
                    )
                for name, (path, headers) in cases.items():
                    samples = await timed(client, path, headers, requests)
                    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
                    rows_of = (
                        f"{rows:,} in-app rows, {users:,} users"
                        if name.startswith("inbox")
                        else f"{queue_rows:,} queue rows"
                    )
                    if "heavy" in name:
                        rows_of = f"{heavy_rows:,} of {rows:,} in-app rows are this person's"
                    results.append(
                        measure(
                            f"{name}, p99",
                            p99,
                            "ms",
                            lower_is_better=True,
                            target=10 if name.startswith("inbox") else None,
                            note=f"{rows_of}, in-process ASGI; p50 {statistics.median(samples):.2f} ms",
                        )
                    )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--heavy-rows", type=int, default=100_000, help="the heavy person's share of --rows")
    parser.add_argument("--queue-rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", help="append the results (one JSON object per line) to this file")
    args = parser.parse_args()
    measured = asyncio.run(main(args.rows, args.queue_rows, args.requests, args.heavy_rows))
    report(measured, "inbox and queue pages", args.json)
