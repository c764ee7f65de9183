"""A batch's rows are found by primary key whatever the table's statistics say (``queries.pending_rows``).

On a table whose statistics were taken when it held no PENDING rows (a fresh install, a quiet night), the
planner weighs the pending rows' partial index as nearly empty; ``WHERE id = ANY(:ids) AND status =
'PENDING'`` then read every PENDING row of every plan for each batch (bench.audience: 45 ms statements, three
times the database's CPU). Each statement that finds a batch's rows is EXPLAINed here on such a table — a fresh
database, never analysed, 20,000 PENDING rows — and must find them through the primary key, never through an
index on ``status``. (Writing them back may scan a table this small whole: the planner weighs that against the
table's real size, which it always knows, so on a large table it takes the primary key.)
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import text

from activities.delivery.in_app import _DELIVER
from activities.delivery.queries import _TO_SEND
from activities.delivery.recording import AnswerRecorder
from notiflow.db import make_engine
from tests.services import migrated_database

PENDING_ROWS = 20_000
BATCH = 200


def _indexes(plan: Any) -> set[str]:
    """Every index a plan (EXPLAIN's JSON) reads, and ``seq:<table>`` for every table it scans whole."""
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.add(plan["Index Name"])
        if plan.get("Node Type") == "Seq Scan":
            found.add(f"seq:{plan['Relation Name']}")
        for value in plan.values():
            found |= _indexes(value)
    elif isinstance(plan, list):
        for item in plan:
            found |= _indexes(item)
    return found


async def test_a_batchs_rows_are_read_and_written_through_the_primary_key():
    async with migrated_database("lookups") as url:
        engine = make_engine(url, pool_size=1)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO users (id, name, email, roles, locale) "
                        "SELECT 'u' || g, 'n', 'e' || g || '@example.org', '{admin}', 'en' "
                        "FROM generate_series(1, :n) AS g"
                    ),
                    {"n": PENDING_ROWS},
                )
                await conn.execute(
                    text("""
                    INSERT INTO notification_queue (id, recipient_id, template_name, delivery_method, content,
                                                    context_data, status, dedupe_key, notification_type)
                    SELECT gen_random_uuid(), 'u' || g, 't', 'EMAIL', 'c', jsonb_build_object('source_id', 's'),
                           'PENDING', 'k' || g, 'ISSUE_CREATED'
                      FROM generate_series(1, :n) AS g"""),
                    {"n": PENDING_ROWS},
                )
                ids = [
                    str(i)
                    for i in (await conn.execute(text(f"SELECT id FROM notification_queue LIMIT {BATCH}"))).scalars()
                ]
                answers = {
                    "row_id": ids,
                    "new_status": ["SENT"] * BATCH,
                    "sent": [datetime.now(timezone.utc)] * BATCH,
                    "error": [None] * BATCH,
                    "message_id": [f"<{uuid.uuid4()}@example.org>" for _ in ids],
                    "response": ["250 ok"] * BATCH,
                    "provider": ["smtp"] * BATCH,
                    "log_status": ["SENT"] * BATCH,
                    "attempt": 1,
                }
                statements = {
                    "pending_rows": (_TO_SEND, {"ids": ids}),
                    "AnswerRecorder": (AnswerRecorder._RECORD, answers),
                    "deliver_in_app": (
                        _DELIVER,
                        {"ids": ids, "now": datetime.now(timezone.utc), "attempt": 1, "channel": "inbox"},
                    ),
                }
                for name, (statement, params) in statements.items():
                    explained = await conn.execute(text(f"EXPLAIN (FORMAT JSON) {statement.text}"), params)
                    plan = explained.scalar_one()
                    used = _indexes(json.loads(plan) if isinstance(plan, str) else plan)
                    assert "pk_notification_queue" in used, (name, used)
                    assert (
                        not {
                            "ix_notification_queue_pending_source",
                            "ix_notification_queue_status_created_at",
                        }
                        & used
                    ), (name, used)
                await conn.rollback()
        finally:
            await engine.dispose()
