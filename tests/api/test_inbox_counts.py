"""The unread counter (``inbox_counts``): kept exact by triggers through every write, concurrent ones too."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from alembic import command
from sqlalchemy import delete, func, select, text, update

from notiflow.db import alembic_config, make_engine
from notiflow.models import InAppNotificationRow, InboxCountRow
from tests.api.helpers import add_users, bearer, person
from tests.api.test_inbox import T0, URL, deliver

Inbox = InAppNotificationRow


async def counter(db, user_id: str) -> int | None:
    async with db() as session:
        return await session.scalar(select(InboxCountRow.unread).where(InboxCountRow.user_id == user_id))


async def truth(db, user_id: str) -> int:
    async with db() as session:
        return await session.scalar(
            select(func.count())
            .select_from(Inbox)
            .where(Inbox.user_id == user_id, Inbox.read_at.is_(None), Inbox.archived_at.is_(None))
        )


async def assert_exact(db, api, user_id: str, expected: int) -> None:
    assert await truth(db, user_id) == expected
    assert await counter(db, user_id) == expected
    assert (await api.get(f"{URL}/unread-count", headers=bearer(user_id))).json() == {"unread_count": expected}


async def test_the_counter_follows_every_change(api, db):
    await add_users(db, person("u-1"), person("u-2"))
    assert (await api.get(f"{URL}/unread-count", headers=bearer("u-1"))).json() == {"unread_count": 0}  # no row yet
    ids = await deliver(db, "u-1", 6)
    await deliver(db, "u-2", 2)
    await deliver(db, "u-1", 1, title="already read", read_at=T0)  # inserted read: not counted
    await deliver(db, "u-1", 1, title="already archived", archived_at=T0)  # inserted archived: not counted
    await assert_exact(db, api, "u-1", 6)
    me = bearer("u-1")

    await api.post(f"{URL}/{ids[0]}/read", headers=me)
    await api.post(f"{URL}/{ids[0]}/read", headers=me)  # twice: counted once
    await assert_exact(db, api, "u-1", 5)
    await api.post(f"{URL}/{ids[0]}/unread", headers=me)
    await api.post(f"{URL}/{ids[0]}/unread", headers=me)
    await assert_exact(db, api, "u-1", 6)
    await api.post(f"{URL}/{ids[1]}/archive", headers=me)
    await api.post(f"{URL}/{ids[1]}/archive", headers=me)
    await assert_exact(db, api, "u-1", 5)
    async with db.begin() as session:  # un-archive (no route does it; the trigger counts it all the same)
        await session.execute(update(Inbox).where(Inbox.id == uuid.UUID(ids[1])).values(archived_at=None))
    await assert_exact(db, api, "u-1", 6)
    async with db.begin() as session:  # read and archived at once: counted once
        await session.execute(
            update(Inbox).where(Inbox.id == uuid.UUID(ids[2])).values(read_at=func.now(), archived_at=func.now())
        )
    await assert_exact(db, api, "u-1", 5)
    async with db.begin() as session:  # deletes (retention, a person erased): unread ones come off, read ones not
        await session.execute(delete(Inbox).where(Inbox.id.in_([uuid.UUID(ids[3]), uuid.UUID(ids[2])])))
    await assert_exact(db, api, "u-1", 4)
    assert (await api.get(URL, headers=me)).json()["unread_count"] == 4
    assert (await api.post(f"{URL}/read-all", headers=me)).json() == {"marked_read": 4, "unread_count": 0}
    await assert_exact(db, api, "u-1", 0)
    await assert_exact(db, api, "u-2", 2)  # someone else's untouched
    async with db.begin() as session:  # a person deleted: their rows cascade, their counter settles at 0
        await session.execute(text("DELETE FROM users WHERE id = 'u-2'"))
    assert await counter(db, "u-2") in (0, None)


async def test_concurrent_deliveries_and_reads_keep_it_exact(api, db, database_url):
    people = [f"u-{n}" for n in range(1, 5)]
    await add_users(db, *(person(p) for p in people))
    seeded = {p: await deliver(db, p, 20) for p in people}
    engine = make_engine(database_url, pool_size=12)

    async def deliver_batches(worker: int) -> None:
        for batch in range(10):  # each batch: every person, in another order per worker (as delivery batches come)
            rows = [
                {
                    "id": uuid.uuid4(),
                    "user_id": people[(worker + k) % len(people)],
                    "notification_type": "ISSUE_ASSIGNED",
                    "title": f"w{worker} b{batch} k{k}",
                    "body": "b",
                    "created_at": T0 + timedelta(seconds=batch),
                }
                for k in range(8)
            ]
            rows.sort(key=lambda row: row["user_id"])  # as deliver_in_app does (one statement per row)
            async with engine.begin() as conn:
                await conn.execute(Inbox.__table__.insert(), rows)

    async def read_some(user_id: str) -> None:
        for notification_id in seeded[user_id][:10]:
            await api.post(f"{URL}/{notification_id}/read", headers=bearer(user_id))
            await api.post(f"{URL}/{notification_id}/unread", headers=bearer(user_id))
            await api.post(f"{URL}/{notification_id}/read", headers=bearer(user_id))

    async def read_all(user_id: str) -> None:
        for _ in range(5):
            await api.post(f"{URL}/read-all", headers=bearer(user_id))
            await asyncio.sleep(0)

    async def archive_direct(user_id: str) -> None:
        for notification_id in seeded[user_id][10:]:
            async with engine.begin() as conn:
                await conn.execute(
                    update(Inbox).where(Inbox.id == uuid.UUID(notification_id)).values(archived_at=func.now())
                )

    try:
        await asyncio.gather(
            *(deliver_batches(w) for w in range(6)),
            *(read_some(p) for p in people),
            read_all("u-1"),
            read_all("u-2"),
            archive_direct("u-3"),
            archive_direct("u-1"),
        )
    finally:
        await engine.dispose()
    for p in people:
        assert await counter(db, p) == await truth(db, p), p
    assert await truth(db, "u-4") > 0  # the race left something unread to count


async def test_the_migration_backfills_the_counts(postgres):
    url = await postgres.create_database("notiflow_backfill")
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0011")
        engine = make_engine(url, pool_size=1)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO users (id, name, email) SELECT 'u-' || g, 'U', 'u' || g || '@example.mg' "
                    "FROM generate_series(1, 7) g"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO in_app_notifications (id, user_id, notification_type, title, body, read_at, "
                    "archived_at) SELECT gen_random_uuid(), 'u-' || (1 + g % 5), 'T', 't', 'b', "
                    "CASE WHEN g % 3 = 0 THEN now() END, CASE WHEN g % 7 = 0 THEN now() END "
                    "FROM generate_series(1, 500) g"
                )
            )
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
        async with engine.connect() as conn:
            counted = dict((await conn.execute(text("SELECT user_id, unread FROM inbox_counts"))).all())
            real = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT user_id, count(*) FROM in_app_notifications "
                            "WHERE read_at IS NULL AND archived_at IS NULL GROUP BY user_id"
                        )
                    )
                ).all()
            )
        await engine.dispose()
        assert counted == real
        assert len(real) == 5 and sum(real.values()) > 0
    finally:
        await postgres.drop_database(url)
