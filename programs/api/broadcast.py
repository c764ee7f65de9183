"""In-process fan-out of new in-app notifications to SSE subscribers.

The deliver activity commits an ``in_app_notifications`` row and calls
``pg_notify('notiflow_inbox', '{"user_id": …, "id": …}')`` in the same
transaction. Each API process holds one dedicated LISTEN connection and hands
the ids to the streams of that user, so N open browsers cost one database
connection, not N.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import asyncpg

from notiflow.db import INBOX_CHANNEL

RECONNECT_DELAY_SECONDS = 1.0
#: A stream that falls this far behind loses the oldest news; the client re-reads /inbox on reconnect anyway.
SUBSCRIBER_BACKLOG = 1000

log = logging.getLogger(__name__)


class InboxBroadcaster:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._connection: asyncpg.Connection | None = None
        self._subscribers: dict[str, set[asyncio.Queue[uuid.UUID]]] = defaultdict(set)
        self._reconnecting: asyncio.Task | None = None
        self._stopping = False

    @property
    def is_listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def start(self) -> None:
        self._connection = await asyncpg.connect(self._dsn)
        self._connection.add_termination_listener(self._on_connection_lost)
        await self._connection.add_listener(INBOX_CHANNEL, self._on_notification)

    async def stop(self) -> None:
        self._stopping = True
        if self._reconnecting:
            self._reconnecting.cancel()
        if self._connection and not self._connection.is_closed():
            await self._connection.close()

    @contextlib.asynccontextmanager
    async def subscribe(self, user_id: str) -> AsyncIterator[asyncio.Queue[uuid.UUID]]:
        """Ids of this user's new in-app notifications, for as long as the block runs."""
        arrivals: asyncio.Queue[uuid.UUID] = asyncio.Queue(maxsize=SUBSCRIBER_BACKLOG)
        self._subscribers[user_id].add(arrivals)
        try:
            yield arrivals
        finally:
            self._subscribers[user_id].discard(arrivals)
            if not self._subscribers[user_id]:
                del self._subscribers[user_id]

    def _on_notification(self, _connection, _pid, _channel, payload: str) -> None:
        try:
            message = json.loads(payload)
            user_id, notification_id = str(message["user_id"]), uuid.UUID(str(message["id"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed %s payload: %r", INBOX_CHANNEL, payload)
            return
        for arrivals in self._subscribers.get(user_id, ()):
            with contextlib.suppress(asyncio.QueueFull):
                arrivals.put_nowait(notification_id)

    def _on_connection_lost(self, _connection) -> None:
        if not self._stopping:
            log.warning("LISTEN connection for %s lost; reconnecting", INBOX_CHANNEL)
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        """Keep trying until the database answers again: live inbox updates depend on it."""
        while not self._stopping:
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)
            try:
                await self.start()
                log.info("LISTEN %s restored", INBOX_CHANNEL)
                return
            except Exception as exc:  # any failure means: not back yet, try again
                log.warning("LISTEN %s still down: %s", INBOX_CHANNEL, exc)
