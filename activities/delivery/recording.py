"""Recording provider answers so none is lost: grouped writes that wait out a database outage.

A provider's answer (accepted, refused, try later) must reach the queue row, or
a retry would send the message again or a row would say FAILED for mail that
arrived. ``AnswerRecorder`` writes answers in groups on one connection, each
group in one transaction (row status + attempt log in one statement over the
group's answers); when the database is unreachable it holds the answers and retries
the write until it returns, so the activity only completes once every answer is
stored.

How much can a crash cost? A send holds a slot of its provider's *window* from
before it starts until its answer is stored. The window is one per provider in
the worker (shared by every batch running at once), sized like its connection
pool, so at most that many messages (the SMTP pool size) are ever
sent-but-unrecorded in a worker: a ``kill -9`` resends at most that many, each with
the same Message-ID (derived from the queue row). While the database is down the
window fills and sending pauses, instead of piling up unrecorded mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from notiflow.contracts import DeliveryStatus

log = logging.getLogger(__name__)

#: How often a running deliver activity tells Temporal it is alive (its heartbeat timeout is 10 s).
HEARTBEAT_EVERY = 2.0
#: Waits between write attempts while the database is unreachable: from the first to the cap.
RETRY_WRITE_FIRST, RETRY_WRITE_CAP = 0.2, 5.0
#: SQLSTATE classes meaning "the database is not there right now": connection exception, operator
#: intervention (terminated, shutting down), insufficient resources; 55000 = not accepting connections.
_UNAVAILABLE_STATES = ("08", "57", "53", "55000")


def database_unavailable(exc: BaseException) -> bool:
    """The write failed because the database is away (try again), not because the statement is wrong."""
    if isinstance(exc, (OSError, ConnectionError, asyncio.TimeoutError, InterfaceError, OperationalError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
        return state.startswith(_UNAVAILABLE_STATES)
    return False


@contextlib.asynccontextmanager
async def heartbeating(progress) -> AsyncIterator[None]:
    """Heartbeat in the background for as long as the block runs, whatever it is waiting on.

    Per-send heartbeats alone would let a slow provider or a database outage look
    like a dead worker and start a second, concurrent attempt; this way only a
    dead worker stops the heartbeats. ``progress()`` gives the details recorded.
    """

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY)
            activity.heartbeat(progress())

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class AnswerRecorder:
    """Stores provider answers in groups; holds them while the database is down. Use as ``async with``."""

    #: One statement per group: the rows change and their attempts are logged atomically, the answers passed as
    #: arrays (one row each, in the same order); an executemany of one statement per answer cost the worker
    #: ~0.1 ms of SQLAlchemy and asyncpg work per answer. Each row is found (and locked) by its primary key, its
    #: status checked there: see ``queries.pending_rows`` for why not ``WHERE id = ANY(...) AND status = ...``.
    _RECORD = text("""
        WITH answer AS (
            SELECT p.id, a.*
              FROM unnest(CAST(:row_id AS uuid[]), CAST(:new_status AS text[]), CAST(:sent AS timestamptz[]),
                          CAST(:error AS text[]), CAST(:message_id AS text[]), CAST(:response AS text[]),
                          CAST(:provider AS text[]), CAST(:log_status AS text[]))
                   AS a(row_id, new_status, sent, error, message_id, response, provider, log_status)
             CROSS JOIN LATERAL (SELECT id FROM notification_queue AS x
                                  WHERE x.id = a.row_id AND x.status = 'PENDING' FOR UPDATE) AS p),
        changed AS (
            UPDATE notification_queue AS q
               SET status = COALESCE(a.new_status, q.status), sent_at = a.sent, error_message = a.error,
                   retry_count = CASE WHEN a.new_status IS NULL THEN :attempt ELSE :attempt - 1 END,
                   provider_message_id = a.message_id, provider_response = a.response,
                   provider = COALESCE(a.provider, q.provider)
              FROM answer AS a
             WHERE q.id = a.id
         RETURNING q.id, q.recipient_id, q.notification_type, q.delivery_method, q.workflow_id, a.log_status,
                   a.sent, a.error)
        INSERT INTO notification_logs (id, queue_id, user_id, notification_type, delivery_method, status,
                                       attempt, sent_at, error_details, context)
        SELECT gen_random_uuid(), id, recipient_id, notification_type, delivery_method, log_status,
               :attempt, sent, error, jsonb_build_object('workflow_id', workflow_id)
          FROM changed""")

    def __init__(self, sessions: async_sessionmaker[AsyncSession], attempt: int, *, window: asyncio.Semaphore):
        self.sessions = sessions
        self.attempt = attempt
        #: the provider's worker-wide window: sends in flight plus answers not yet stored never exceed its size
        self.window = window
        self.statuses: list[DeliveryStatus | None] = []
        self.held_since: float | None = None
        self._queued: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AnswerRecorder:
        self._writer = asyncio.create_task(self._write_forever())
        return self

    async def __aexit__(self, *exc_info) -> None:
        assert self._writer is not None
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    def count(self, status: DeliveryStatus) -> int:
        return sum(1 for s in self.statuses if s == status)

    async def record(
        self,
        row_id,
        status: DeliveryStatus | None,
        *,
        error: str | None = None,
        message_id: str | None = None,
        response: str | None = None,
        provider: str | None = None,
    ) -> None:
        """Store one answer, returning once it is committed. ``status`` None: a failed attempt to retry."""
        answer = (
            row_id,
            str(status) if status else None,
            datetime.now(timezone.utc) if status == DeliveryStatus.SENT else None,
            error,
            message_id,
            response,
            provider,
            str(status or DeliveryStatus.FAILED),
        )
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((answer, stored))
        self._wake.set()
        await stored
        self.statuses.append(status)

    async def _write_forever(self) -> None:
        delay = RETRY_WRITE_FIRST
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queued:
                group, self._queued = self._queued, []
                try:
                    async with self.sessions.begin() as session:
                        await session.execute(self._RECORD, self._parameters([answer for answer, _ in group]))
                except Exception as exc:
                    if not database_unavailable(exc):
                        for _, stored in group:
                            stored.set_exception(exc)
                        continue
                    self._queued = group + self._queued
                    self._hold(exc, len(self._queued))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_WRITE_CAP)
                    continue
                if self.held_since is not None:
                    log.warning("database back: %d held delivery answers written", len(group))
                    self.held_since = None
                delay = RETRY_WRITE_FIRST
                for _, stored in group:
                    stored.set_result(None)

    def _parameters(self, answers: list[tuple[Any, ...]]) -> dict[str, Any]:
        """The group's answers as ``_RECORD``'s arrays (a failed attempt, no status, leaves the row to retry)."""
        columns = ("row_id", "new_status", "sent", "error", "message_id", "response", "provider", "log_status")
        arrays = {name: list(values) for name, values in zip(columns, zip(*answers, strict=True), strict=True)}
        return {**arrays, "attempt": self.attempt}

    def _hold(self, exc: BaseException, count: int) -> None:
        if self.held_since is None:
            self.held_since = asyncio.get_running_loop().time()
            log.warning(
                "database unreachable, holding %d delivery answers until it returns: %s",
                count,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
